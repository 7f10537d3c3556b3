// Formatting and small helpers shared by the page's modules.

export const $ = (id) => document.getElementById(id);
export const ms = (s) => (s == null ? null : Date.parse(s));

export const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
export const shortID = (id) => (id.length > 12 ? id.slice(-8) : id);

// pathOnly drops scheme and host from a client's URL: the remote column
// has them, the lane has little room.
export const pathOnly = (p) => p.replace(/^[a-z]+:\/\/[^/]*/i, '') || '/';
export const clip = (s, n) => (s.length > n ? s.slice(0, Math.max(n - 1, 1)) + '…' : s);

export function fmtSeconds(s) {
  if (s == null || s === 0) return '—';
  if (s < 1) return Math.round(s * 1000) + ' ms';
  if (s < 120) return +s.toFixed(s < 10 ? 2 : 1) + ' s';
  return +(s / 60).toFixed(1) + ' min';
}

// fmtCadence is a ping interval as people say it: "0.5 s", "20 s", "–"
// while not known.
export function fmtCadence(s) {
  if (s == null || s === 0) return '–';
  if (s < 0.1) return Math.round(s * 1000) + ' ms';
  if (s < 120) return +s.toFixed(s < 10 ? 2 : 1) + ' s';
  return +(s / 60).toFixed(1) + ' min';
}

// fmtSpan is a lifetime or a stall: "850 ms", "42 s", "12 min", "3.5 h".
export function fmtSpan(msSpan) {
  const s = Math.max(msSpan, 0) / 1000;
  if (s < 1) return Math.round(s * 1000) + ' ms';
  if (s < 120) return +s.toFixed(s < 10 ? 1 : 0) + ' s';
  if (s < 7200) return Math.round(s / 60) + ' min';
  return +(s / 3600).toFixed(1) + ' h';
}

export function fmtAge(msAgo) {
  if (msAgo < 0) msAgo = 0;
  if (msAgo < 10000) return (msAgo / 1000).toFixed(1) + ' s ago';
  if (msAgo < 120000) return Math.round(msAgo / 1000) + ' s ago';
  return Math.round(msAgo / 60000) + ' min ago';
}

export function fmtRTT(v) {
  if (v == null) return '—';
  if (v < 1) return v.toFixed(2) + ' ms';
  if (v < 100) return v.toFixed(1) + ' ms';
  return Math.round(v) + ' ms';
}

export function fmtBytes(n) {
  if (n < 1024) return n + ' B';
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
  return n.toFixed(n < 10 ? 1 : 0) + ' ' + u[i];
}

export const fmtCount = (n) => n.toLocaleString('en');

// niceStep picks a grid step near span/n from 1, 2, 5 times a power of ten.
export function niceStep(span, n) {
  const raw = span / n;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}

// timeStep picks a time grid step in seconds.
export function timeStep(spanS) {
  for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300]) if (spanS / s <= 8) return s;
  return 600;
}

// sameCadence tells two ping intervals apart as the registry does: within
// 10 % and 10 ms they are one cadence measured twice.
export function sameCadence(a, b) {
  if (a > b) [a, b] = [b, a];
  return b - a <= a / 10 + 0.01;
}

// cadences counts the distinct cadences among intervals (seconds).
export function cadences(ivs) {
  const out = [];
  for (const v of [...ivs].sort((a, b) => a - b)) if (!out.length || !sameCadence(out[out.length - 1], v)) out.push(v);
  return out.length;
}
