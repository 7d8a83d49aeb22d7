package ghsim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"time"
)

// hook is the simulator's one webhook (like a GitHub App's): every
// repository's events go to it.
type hook struct {
	id        int64
	url       string
	secret    []byte
	createdAt time.Time
}

// outgoing is a delivery waiting to be sent.
type outgoing struct {
	seq        uint64
	guid       string
	event      string
	action     string
	repo       string
	body       []byte
	url        string
	secret     []byte
	hookID     int64
	targetID   int64
	queuedAt   time.Time
	due        time.Time
	drop       bool
	duplicate  bool
	delayed    bool
	redelivery bool
}

// Delivery is one entry of the webhook delivery log: an attempt to deliver
// an event (or a dropped one, when a fault swallowed it).
type Delivery struct {
	// ID numbers the log's entries.
	ID int64
	// GUID is the X-GitHub-Delivery header; redeliveries and duplicates
	// carry the original's.
	GUID string
	// Event is the X-GitHub-Event header: ping, workflow_run, workflow_job.
	Event string
	// Action is the payload's action ("" for ping).
	Action string
	// Repo is the repository the event is about ("owner/name").
	Repo string
	// StatusCode is the receiver's answer; 0 when nothing was sent or the
	// request failed.
	StatusCode int
	// Error describes a transport failure or a dropped delivery.
	Error string
	// Dropped is true when fault injection swallowed the delivery.
	Dropped bool
	// Duplicate marks the second copy of a duplicated delivery.
	Duplicate bool
	// Delayed marks a delivery held back so later ones overtook it.
	Delayed bool
	// Redelivery marks a delivery sent by Redeliver.
	Redelivery bool
	// QueuedAt is when the event happened; DeliveredAt when it was sent
	// (both on the simulator's clock).
	QueuedAt    time.Time
	DeliveredAt time.Time
	// Duration is the real time the receiver took to answer.
	Duration time.Duration
	// Payload is the JSON body sent.
	Payload []byte
}

// Deliveries returns the delivery log, in the order attempts were made.
func (s *Sim) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	copy(out, s.deliveries)
	return out
}

// PendingDeliveries is the number of deliveries waiting in the outbox
// (including those a reorder fault holds back).
func (s *Sim) PendingDeliveries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.outbox)
}

// Redeliver sends the delivery with this GUID again, with the same GUID and
// payload, as GitHub's "Redeliver" button does. It is queued for the next
// Tick (or Run's next round) and subject to no fault.
func (s *Sim) Redeliver(guid string) error {
	s.mu.Lock()
	var orig *Delivery
	for i := range s.deliveries {
		if s.deliveries[i].GUID == guid {
			orig = &s.deliveries[i]
			break
		}
	}
	if orig == nil || s.hook == nil {
		s.mu.Unlock()
		if orig == nil {
			return fmt.Errorf("redeliver %s: no such delivery", guid)
		}
		return fmt.Errorf("redeliver %s: no webhook configured", guid)
	}
	now := s.clock.Now()
	s.outbox = append(s.outbox, &outgoing{
		seq: s.deliverSeq, guid: guid, event: orig.Event, action: orig.Action, repo: orig.Repo,
		body: orig.Payload, url: s.hook.url, secret: s.hook.secret, hookID: s.hook.id,
		queuedAt: now, due: now, redelivery: true,
	})
	s.deliverSeq++
	s.mu.Unlock()
	s.kick()
	return nil
}

// guid returns the UUID-shaped delivery id of the seq-th delivery: the
// same for a delivery and its duplicates, unique to this simulator.
func (s *Sim) guid(seq uint64) string {
	a := splitmix64((uint64(s.opts.Faults.Seed)*0x2545f4914f6cdd1d ^ s.guidSalt) ^ seq)
	b := splitmix64(a ^ 0x94d049bb133111eb)
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(a>>32), uint16(a>>16), uint16(a)&0xfff, uint16(b>>48)&0x3fff|0x8000, b&0xffffffffffff)
}

// enqueue queues an event for the webhook, deciding its faults from the
// seed and the delivery's sequence number.
func (s *Sim) enqueue(event, action string, r *repo, payload map[string]any, at time.Time) {
	if s.hook == nil {
		return
	}
	body, err := json.Marshal(payload)
	if err != nil {
		s.log.Error("ghsim: encode webhook payload", "event", event, "err", err)
		return
	}
	seq := s.deliverSeq
	s.deliverSeq++
	f := s.opts.Faults
	o := &outgoing{
		seq: seq, guid: s.guid(seq), event: event, action: action, body: body,
		url: s.hook.url, secret: s.hook.secret, hookID: s.hook.id, queuedAt: at, due: at,
	}
	if r != nil {
		o.repo, o.targetID = r.fullName(), r.id
	}
	switch {
	case f.hit("drop", seq, f.Drop):
		o.drop = true
	default:
		o.duplicate = f.hit("duplicate", seq, f.Duplicate)
		if f.hit("reorder", seq, f.Reorder) {
			o.delayed = true
			o.due = at.Add(f.ReorderDelay)
		}
	}
	s.outbox = append(s.outbox, o)
}

func (s *Sim) basePayload(action string, r *repo) map[string]any {
	p := map[string]any{
		"repository":   s.repoJSON(r),
		"organization": s.orgJSON(r.owner),
		"sender":       s.actorJSON(),
		"installation": map[string]any{"id": 48000001, "node_id": nodeID("Installation", 48000001)},
	}
	if action != "" {
		p["action"] = action
	}
	return p
}

func (s *Sim) emitRun(rn *run, action string, at time.Time) {
	p := s.basePayload(action, rn.repo)
	p["workflow_run"] = s.runJSON(rn)
	p["workflow"] = s.workflowJSON(rn.repo, rn.workflowPath)
	s.enqueue("workflow_run", action, rn.repo, p, at)
}

func (s *Sim) emitJob(j *job, action string, at time.Time) {
	p := s.basePayload(action, j.run.repo)
	p["workflow_job"] = s.jobJSON(j)
	s.enqueue("workflow_job", action, j.run.repo, p, at)
}

var zen = []string{
	"Design for failure.",
	"Keep it logically awesome.",
	"Anything added dilutes everything else.",
	"Non-blocking is better than blocking.",
	"Approachable is better than simple.",
}

func (s *Sim) enqueuePing() {
	now := s.clock.Now()
	h := s.hook
	hookJSON := map[string]any{
		"type":   "Repository",
		"id":     h.id,
		"name":   "web",
		"active": true,
		"events": []string{"workflow_job", "workflow_run"},
		"config": map[string]any{
			"content_type": "json",
			"insecure_ssl": "0",
			"url":          h.url,
		},
		"updated_at":     ts(h.createdAt),
		"created_at":     ts(h.createdAt),
		"app_id":         nil,
		"deliveries_url": s.api("/hooks/%d/deliveries", h.id),
		"test_url":       s.api("/hooks/%d/test", h.id),
		"ping_url":       s.api("/hooks/%d/pings", h.id),
		"url":            s.api("/hooks/%d", h.id),
		"last_response":  map[string]any{"code": nil, "status": "unused", "message": nil},
	}
	p := map[string]any{
		"zen":     zen[int(s.deliverSeq)%len(zen)],
		"hook_id": h.id,
		"hook":    hookJSON,
		"sender":  s.actorJSON(),
	}
	var first *repo
	for _, r := range s.repos {
		if first == nil || r.id < first.id {
			first = r
		}
	}
	if first != nil {
		p["repository"] = s.repoJSON(first)
		p["organization"] = s.orgJSON(first.owner)
		hookJSON["url"] = s.api("/repos/%s/hooks/%d", first.fullName(), h.id)
		hookJSON["test_url"] = s.api("/repos/%s/hooks/%d/test", first.fullName(), h.id)
		hookJSON["ping_url"] = s.api("/repos/%s/hooks/%d/pings", first.fullName(), h.id)
		hookJSON["deliveries_url"] = s.api("/repos/%s/hooks/%d/deliveries", first.fullName(), h.id)
	}
	s.enqueue("ping", "", first, p, now)
}

// nextDue removes and returns the earliest due delivery (by due time, then
// sequence), or nil.
func (s *Sim) nextDue(now time.Time) *outgoing {
	best := -1
	for i, o := range s.outbox {
		if o.due.After(now) {
			continue
		}
		if best < 0 || o.due.Before(s.outbox[best].due) || (o.due.Equal(s.outbox[best].due) && o.seq < s.outbox[best].seq) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	o := s.outbox[best]
	s.outbox = append(s.outbox[:best], s.outbox[best+1:]...)
	return o
}

// flushDeliveries sends every delivery due when it starts, one at a time
// and in order, without holding s.mu while the receiver answers. Deliveries
// that fall due during the flush wait for the next one, so that a stream of
// new events cannot starve the advancement of runs.
func (s *Sim) flushDeliveries() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	cutoff := s.clock.Now()
	s.mu.Unlock()
	for {
		s.mu.Lock()
		now := s.clock.Now()
		o := s.nextDue(cutoff)
		s.mu.Unlock()
		if o == nil {
			return
		}
		d := Delivery{
			GUID: o.guid, Event: o.event, Action: o.action, Repo: o.repo, Delayed: o.delayed,
			Redelivery: o.redelivery, QueuedAt: o.queuedAt, DeliveredAt: now, Payload: o.body,
		}
		if o.drop {
			d.Dropped, d.Error = true, "dropped by fault injection"
			s.record(d)
			continue
		}
		s.record(s.send(o, d))
		if o.duplicate {
			d.Duplicate = true
			s.record(s.send(o, d))
		}
	}
}

func (s *Sim) record(d Delivery) {
	s.mu.Lock()
	d.ID = int64(len(s.deliveries) + 1)
	s.deliveries = append(s.deliveries, d)
	s.mu.Unlock()
}

// signature is GitHub's webhook signature header value: prefix and the hex
// HMAC of the raw body keyed with the secret.
func signature(h func() hash.Hash, prefix string, secret, body []byte) string {
	m := hmac.New(h, secret)
	m.Write(body)
	return prefix + hex.EncodeToString(m.Sum(nil))
}

// send POSTs one delivery with GitHub's headers and records the answer.
func (s *Sim) send(o *outgoing, d Delivery) Delivery {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(o.body))
	if err != nil {
		d.Error = err.Error()
		return d
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "*/*")
	h.Set("User-Agent", "GitHub-Hookshot/7c1f3a2")
	h.Set("X-GitHub-Event", o.event)
	h.Set("X-GitHub-Delivery", o.guid)
	h.Set("X-GitHub-Hook-ID", fmt.Sprint(o.hookID))
	h.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
	h.Set("X-GitHub-Hook-Installation-Target-ID", fmt.Sprint(o.targetID))
	h.Set("X-Hub-Signature", signature(sha1.New, "sha1=", o.secret, o.body))
	h.Set("X-Hub-Signature-256", signature(sha256.New, "sha256=", o.secret, o.body))
	start := time.Now()
	resp, err := s.opts.HTTPClient.Do(req)
	d.Duration = time.Since(start)
	if err != nil {
		d.Error = err.Error()
		s.log.Warn("ghsim: webhook delivery failed", "event", o.event, "delivery", o.guid, "err", err)
		return d
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	d.StatusCode = resp.StatusCode
	return d
}
