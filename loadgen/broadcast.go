package loadgen

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherws/tether/internal/wire"
)

// broadcastMagic starts every message the publisher sends, before its
// sequence number and send time.
const broadcastMagic = "TBCAST01"

// pending is the broadcast in flight: the subscribers count their copies
// and the last one wakes the publisher.
type pending struct {
	seq      uint64
	measured bool // sent in the measured window
	want     int64
	got      atomic.Int64
	last     atomic.Int64 // unix nanos of the latest arrival
	complete chan struct{}
}

func (r *run) broadcast(ctx context.Context) error {
	subs := r.connectAll(ctx, r.cfg.Conns)
	if r.connected == 0 {
		return r.noConnections()
	}
	pub, err := r.dial(ctx, r.cfg.Conns)
	if err != nil {
		return err
	}
	var (
		cur pendingPtr
		wg  sync.WaitGroup
	)
	for i, c := range subs {
		if c != nil {
			wg.Go(func() { r.subscribe(i, c, &cur) })
		}
	}
	wg.Go(func() { r.drain(pub) })

	// Subscribers join the server's room just after their handshakes: wait
	// for one broadcast that reaches all of them before measuring anything.
	r.publish(pub, &cur, true)
	measured := make(chan struct{})
	go func() {
		r.measure(ctx)
		close(measured)
	}()
	r.publish(pub, &cur, false)
	<-measured
	r.closeAll(append(subs, pub))
	wg.Wait()
	r.pingsFrom(subs)
	return nil
}

type pendingPtr = atomic.Pointer[pending]

// publish sends one broadcast after another until the window ends: each
// waits for every subscriber's copy (or Timeout), then a gap (1/Rate, or
// DefaultBroadcastGap) lets the server settle.
//
// With sync set it publishes unmeasured probes until one reaches every
// subscriber (or Timeout passes), then returns.
func (r *run) publish(pub *wsConn, cur *pendingPtr, sync bool) {
	op := wire.OpBinary
	if r.cfg.Text {
		op = wire.OpText
	}
	msg := Payload(r.cfg.Size)
	copy(msg, broadcastMagic)
	gap := DefaultBroadcastGap
	if r.cfg.Rate > 0 {
		gap = time.Duration(float64(time.Second) / r.cfg.Rate)
	}
	deadline := time.Now().Add(r.cfg.Timeout)
	for seq := r.nextSeq(); !r.stopped.Load(); seq = r.nextSeq() {
		if sync && time.Now().After(deadline) {
			return
		}
		measuring := !sync && r.measuring.Load()
		p := &pending{seq: seq, measured: measuring, want: int64(r.connected), complete: make(chan struct{})}
		cur.Store(p)
		sent := time.Now()
		binary.BigEndian.PutUint64(msg[8:], seq)
		binary.BigEndian.PutUint64(msg[16:], uint64(sent.UnixNano()))
		frame, err := pub.dataFrame(op, msg)
		if err == nil {
			err = pub.writeRaw(frame)
		}
		if err != nil {
			r.connErr(pub, err)
			return
		}
		select {
		case <-p.complete:
			if sync {
				return
			}
			if measuring && r.measuring.Load() {
				r.toLastMu.Lock()
				r.toLast = append(r.toLast, time.Duration(p.last.Load()-sent.UnixNano()).Seconds())
				r.toLastMu.Unlock()
				if n := r.done.Add(1); r.cfg.Messages > 0 && n >= r.cfg.Messages {
					r.fullOnce.Do(func() { close(r.full) })
				}
			}
		case <-time.After(r.cfg.Timeout):
			if !sync {
				r.errs.add("broadcast: not every subscriber received it")
			}
		case <-r.stop:
			return
		}
		select {
		case <-time.After(gap):
		case <-r.stop:
			return
		}
	}
}

// subscribe reads broadcasts and times each from its send time.
func (r *run) subscribe(i int, c *wsConn, cur *pendingPtr) {
	for {
		_, p, err := c.readMessage()
		if err != nil {
			r.connErr(c, err)
			c.nc.Close()
			return
		}
		now := time.Now().UnixNano()
		if len(p) < minBroadcastSize || string(p[:8]) != broadcastMagic {
			continue
		}
		seq := binary.BigEndian.Uint64(p[8:])
		sent := int64(binary.BigEndian.Uint64(p[16:]))
		pd := cur.Load()
		if pd == nil || pd.seq != seq {
			continue // a late copy of an earlier broadcast
		}
		if pd.measured {
			r.lat.record(i, time.Duration(now-sent))
		}
		for {
			last := pd.last.Load()
			if now <= last || pd.last.CompareAndSwap(last, now) {
				break
			}
		}
		if pd.got.Add(1) == pd.want {
			close(pd.complete)
		}
	}
}

// nextSeq numbers broadcasts across the probe and measured phases.
func (r *run) nextSeq() uint64 { return r.bseq.Add(1) }
