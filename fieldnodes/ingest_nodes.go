package fieldnodes

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// nodeKey is how a message names its node: a native device by its uid, a LoRaWAN one by its
// DevEUI.
type nodeKey struct {
	uid string
	eui string
}

func (k nodeKey) String() string {
	if k.eui != "" {
		return "dev_eui " + k.eui
	}
	return k.uid
}

// id is the key as a pending device's uid: the uid, or the DevEUI.
func (k nodeKey) id() string {
	if k.eui != "" {
		return k.eui
	}
	return k.uid
}

// nodeInfo is what the ingest needs of a node.
type nodeInfo struct {
	id      int64
	farm    int64
	profile string
	zoned   bool // in an irrigation zone: its readings may drive rules (the rules are told at once)
}

type nodeEntry struct {
	info    nodeInfo
	expires time.Time
	gen     uint64 // the Store's nodesChanged when it was read
}

// nodeCache remembers nodes by key for a while, or until a node is updated or deleted through
// the Store (another instance's changes show after the TTL). Unknown keys are not remembered,
// so a node registered (or claimed) a moment later is recognised at once.
type nodeCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	entries map[nodeKey]nodeEntry
}

// lookupNodes maps keys to nodes, from the cache or in one query for the rest; unknown keys are
// absent.
func (g *Ingest) lookupNodes(ctx context.Context, keys []nodeKey) (map[nodeKey]nodeInfo, error) {
	out := make(map[nodeKey]nodeInfo, len(keys))
	now := g.cfg.Now()
	gen := g.store.nodesChanged.Load()
	var uids, euis []string
	asked := map[nodeKey]bool{}
	c := &g.nodes
	c.mu.Lock()
	for _, k := range keys {
		if e, ok := c.entries[k]; ok && now.Before(e.expires) && e.gen == gen {
			out[k] = e.info
		} else if !asked[k] {
			asked[k] = true
			if k.eui != "" {
				euis = append(euis, k.eui)
			} else {
				uids = append(uids, k.uid)
			}
		}
	}
	c.mu.Unlock()
	if len(uids)+len(euis) == 0 {
		return out, nil
	}
	found, err := g.store.nodesByKey(ctx, uids, euis)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) > 1_000_000 { // a bound, not a policy: a fleet that large restarts with a cold cache
		clear(c.entries)
	}
	for k, info := range found {
		out[k] = info
		c.entries[k] = nodeEntry{info: info, expires: now.Add(c.ttl), gen: gen}
	}
	return out, nil
}

// nodesByKey finds the nodes with the given uids and DevEUIs.
func (s *Store) nodesByKey(ctx context.Context, uids, euis []string) (map[nodeKey]nodeInfo, error) {
	out := make(map[nodeKey]nodeInfo, len(uids)+len(euis))
	rows, err := s.db.Query(ctx, `
		SELECT uid, coalesce(dev_eui, ''), id, farm_id, profile, zone_id IS NOT NULL FROM nodes
		WHERE uid = ANY($1) OR dev_eui = ANY($2)`, uids, euis)
	if err != nil {
		return nil, fmt.Errorf("look up nodes: %w", err)
	}
	defer rows.Close()
	wantUID := make(map[string]bool, len(uids))
	for _, u := range uids {
		wantUID[u] = true
	}
	for rows.Next() {
		var uid, eui string
		var info nodeInfo
		if err := rows.Scan(&uid, &eui, &info.id, &info.farm, &info.profile, &info.zoned); err != nil {
			return nil, fmt.Errorf("look up nodes: %w", err)
		}
		if wantUID[uid] {
			out[nodeKey{uid: uid}] = info
		}
		if eui != "" {
			out[nodeKey{eui: eui}] = info
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up nodes: %w", err)
	}
	return out, nil
}
