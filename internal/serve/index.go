package serve

import "net/http"

// index is a placeholder page until the dashboard package lands: it lists
// the live connections from the JSON API every second.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(indexHTML))
}

const indexHTML = `<!doctype html>
<meta charset="utf-8"><title>Tether</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}</style>
<h1>Tether</h1>
<p>Endpoints: <code>/echo</code>, <code>/broadcast</code>, <code>/api/connections</code>.</p>
<table><thead><tr><th>id</th><th>remote</th><th>path</th><th>state</th><th>ping interval</th><th>rtt ms</th><th>in</th><th>out</th></tr></thead>
<tbody id="conns"></tbody></table>
<script>
async function refresh() {
  const list = await (await fetch('/api/connections')).json();
  const rows = list.map(c => '<tr>' + [c.id, c.remote, c.path, c.state, c.ping_interval + ' s',
    c.rtt_ms == null ? '' : c.rtt_ms.toFixed(2), c.messages_in, c.messages_out]
    .map(v => '<td>' + String(v).replace(/[&<>]/g, '') + '</td>').join('') + '</tr>');
  document.getElementById('conns').innerHTML = rows.join('');
}
refresh(); setInterval(refresh, 1000);
</script>
`
