package fieldnodes

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/aghali/aghali/fieldnodes/lorawan"
	"github.com/aghali/aghali/fieldnodes/profile"
)

// commit stores what a batch carried (readings, pending devices, rejections), then
// acknowledges its messages in turn, then hands its node upkeep to the upkeep writer. Each step
// is retried until it succeeds or the ingest's context ends; nothing is acknowledged that is
// not committed.
func (g *Ingest) commit(b *batch) {
	ctx := g.ctx
	start := time.Now()
	acked := false
	defer func() {
		if !acked { // given up: the turn passes on without acknowledging anything
			g.acks.wait(b.seq)
			g.acks.done()
		}
	}()

	// Which nodes, with which profiles?
	var keys []nodeKey
	for _, it := range b.items {
		if it.rej == nil && !it.ignored {
			keys = append(keys, it.key)
		}
	}
	var nodes map[nodeKey]nodeInfo
	if err := g.retry(ctx, "look up nodes", func() (err error) {
		nodes, err = g.lookupNodes(ctx, keys)
		return err
	}); err != nil {
		g.abandon(b, err)
		return
	}
	profiles := map[string]*profile.Compiled{}
	for _, n := range nodes {
		if _, done := profiles[n.profile]; done {
			continue
		}
		var p *profile.Compiled
		err := g.retry(ctx, "load profile", func() (err error) {
			p, err = g.store.Profile(ctx, n.profile)
			if errors.Is(err, ErrNotFound) {
				return nil // refused per message below
			}
			return err
		})
		if err != nil {
			g.abandon(b, err)
			return
		}
		profiles[n.profile] = p
	}

	up := newUpkeepSet()
	inBatch := map[frameKey]bool{}
	weight := 0
	for _, it := range b.items {
		weight += it.weight()
	}
	readings := make([]Reading, 0, weight+weight/4)
	var pending, rejected, stored, ignored, copies []*item
	for _, it := range b.items {
		if it.rej != nil {
			rejected = append(rejected, it)
			continue
		}
		if it.ignored {
			ignored = append(ignored, it)
			continue
		}
		n, ok := nodes[it.key]
		if !ok {
			pending = append(pending, it)
			continue
		}
		p := profiles[n.profile]
		if p == nil {
			it.rej = &rejection{RejectInvalid, "node's profile " + n.profile + " does not exist"}
			rejected = append(rejected, it)
			continue
		}
		before := len(readings)
		var rej *rejection
		readings, rej = g.readingsOf(readings, it, n, p, up, inBatch)
		switch {
		case rej != nil:
			readings = readings[:before]
			it.rej = rej
			rejected = append(rejected, it)
		case it.copyOf:
			copies = append(copies, it)
		default:
			it.node, it.readings = n.id, readings[before:len(readings):len(readings)]
			stored = append(stored, it)
		}
	}

	inserted, err := g.insert(ctx, readings, up)
	var ve *ValidationError
	if errors.As(err, &ve) {
		// Something in the batch is refused for good: find out which messages, one by one.
		inserted, stored, rejected, err = g.insertEach(ctx, up, stored, rejected)
	}
	if err != nil {
		g.abandon(b, err)
		return
	}
	g.tellZoned(ctx, stored, nodes)

	// An unknown device keeps its last PendingMessagesKept messages: of a batch with more from
	// one device, only those are written (the rest are counted), so that a chatty stranger does
	// not cost a round trip per message.
	perDevice := map[string]int{}
	for _, it := range pending {
		perDevice[it.source+"\x00"+it.key.id()]++
	}
	seenOf := map[string]int{}
	for _, it := range pending {
		k := it.source + "\x00" + it.key.id()
		seenOf[k]++
		n, left := perDevice[k], perDevice[k]-seenOf[k]
		if left >= PendingMessagesKept {
			continue
		}
		more := 0
		if left == PendingMessagesKept-1 { // the first written carries the count of the skipped
			more = max(n-PendingMessagesKept, 0)
		}
		if err := g.retry(ctx, "record pending device", func() error {
			return g.store.recordPending(ctx, it.source, it.key.id(), it.label, it.event, it.msg.Topic, it.msg.Payload, it.msg.Received, more)
		}); err != nil {
			g.abandon(b, err)
			return
		}
	}
	if len(rejected) > 0 {
		rows := make([]RejectedMessage, 0, len(rejected))
		for _, it := range rejected {
			rows = append(rows, RejectedMessage{ReceivedAt: it.msg.Received, Topic: it.msg.Topic, Payload: it.msg.Payload,
				Reason: it.rej.reason, Detail: it.rej.detail})
		}
		if err := g.retry(ctx, "record rejected messages", func() error { return g.store.rejectMany(ctx, rows) }); err != nil {
			g.abandon(b, err)
			return
		}
	}

	// Committed. Counted before the acknowledgements, so that a publisher that has its PUBACKs
	// finds them counted.
	g.metrics.readingsStored.Add(float64(inserted))
	g.metrics.readingsDuplicate.Add(float64(len(readings) - inserted))
	g.metrics.messages.WithLabelValues("stored").Add(float64(len(stored)))
	g.metrics.messages.WithLabelValues("copy").Add(float64(len(copies)))
	g.metrics.messages.WithLabelValues("ignored").Add(float64(len(ignored)))
	g.metrics.messages.WithLabelValues("pending").Add(float64(len(pending)))
	g.metrics.messages.WithLabelValues("rejected").Add(float64(len(rejected)))
	for _, it := range rejected {
		g.metrics.rejections.WithLabelValues(it.rej.reason).Inc()
	}

	// Acknowledge, in the order the batches were made.
	g.acks.wait(b.seq)
	for _, it := range b.items {
		it.msg.Ack()
	}
	for _, it := range stored {
		if it.lw != nil && it.lw.Kind == lorawan.KindUp {
			if g.frames.record(it.node, it.lw.FCnt, it.hash, it.at) {
				up.node(it.node).resets++
				g.log.Info("frame counter reset", "node", it.node, "dev_eui", it.key.eui, "f_cnt", it.lw.FCnt)
			}
		}
		if it.lw != nil && it.lw.Kind == lorawan.KindJoin {
			g.frames.joined(it.node)
		}
	}
	g.acks.done()
	acked = true
	g.upkeep.add(up)

	g.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	for _, it := range rejected {
		g.log.Warn("message rejected", "topic", it.msg.Topic, "reason", it.rej.reason, "detail", it.rej.detail)
	}
	for _, it := range pending {
		g.log.Info("message from an unregistered device", "source", it.source, "device", it.key.String(), "topic", it.msg.Topic)
	}
}

// tellZoned tells the listener at once which nodes in irrigation zones got the readings just
// committed: rules read readings, not the node upkeep, so they need not wait for it. Nodes in
// no zone are not told of: no rule reads them at their commit (a farm's rules read them when a
// zone's readings come, and every minute). A node just put in a zone is told of once this
// ingest's cache knows it (NodeCacheTTL); until then the minutely pass covers its zone.
func (g *Ingest) tellZoned(ctx context.Context, stored []*item, nodes map[nodeKey]nodeInfo) {
	if g.cfg.Listener == nil {
		return
	}
	committed := time.Now()
	var ids []int64
	for _, it := range stored {
		if len(it.readings) > 0 && nodes[it.key].zoned {
			ids = append(ids, it.node)
		}
	}
	slices.Sort(ids)
	if ids = slices.Compact(ids); len(ids) > 0 {
		g.cfg.Listener.ReadingsCommitted(ctx, ids, committed)
	}
}

// insert commits readings, retrying on failure; a *ValidationError is returned at once.
func (g *Ingest) insert(ctx context.Context, readings []Reading, up *upkeepSet) (int, error) {
	var inserted int
	err := g.retry(ctx, "commit readings", func() (err error) {
		inserted, err = g.store.commitReadings(ctx, readings, up)
		return err
	})
	return inserted, err
}

// insertEach runs after the batch as a whole was refused (a metric name past the catalogue's
// cap, most likely): it sorts out the messages the store refuses, by their metric names, without
// writing, then commits the rest as one batch; only if that is refused too does it go message by
// message. A device sending new names past the cap so costs one extra round trip, not one per
// message.
func (g *Ingest) insertEach(ctx context.Context, up *upkeepSet, stored, rejected []*item) (int, []*item, []*item, error) {
	var ok []*item
	var rest []Reading
	for _, it := range stored {
		var refused string
		err := g.retry(ctx, "check metric names", func() (err error) {
			refused, err = g.store.refusedMetric(ctx, it.readings)
			return err
		})
		if err != nil {
			return 0, nil, nil, err
		}
		if refused != "" {
			it.rej = &rejection{RejectRefused, refused}
			rejected = append(rejected, it)
			continue
		}
		ok = append(ok, it)
		rest = append(rest, it.readings...)
	}
	n, err := g.insert(ctx, rest, up)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return n, ok, rejected, err
	}
	var total int
	var stillOK []*item
	for _, it := range ok {
		n, err := g.insert(ctx, it.readings, up)
		switch {
		case errors.As(err, &ve):
			it.rej = &rejection{RejectRefused, ve.Error()}
			rejected = append(rejected, it)
		case err != nil:
			return 0, nil, nil, err
		default:
			total += n
			stillOK = append(stillOK, it)
		}
	}
	return total, stillOK, rejected, nil
}

// abandon leaves a batch unacknowledged: the broker (or device) delivers it again when the
// session resumes.
func (g *Ingest) abandon(b *batch, err error) {
	g.metrics.messages.WithLabelValues("abandoned").Add(float64(len(b.items)))
	g.log.Error("ingest gave up on a batch; its messages stay unacknowledged for redelivery",
		"messages", len(b.items), "err", err)
}
