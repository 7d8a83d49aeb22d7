package models

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"gorm.io/gorm"
)

// notifier wakes the subscribers of event streams (Outbox.Subscribe).
type notifier struct {
	pool *pgxpool.Pool // PostgreSQL: LISTEN on EventsChannel; nil on SQLite

	ctx    context.Context // ends when the database closes
	cancel context.CancelFunc

	mu        sync.Mutex
	subs      map[*subscription]struct{}
	listening bool
	// pending holds, on SQLite, the wake-ups of each open Store.Tx
	// transaction, sent when it commits (wakeTx).
	pending map[*sql.Tx][]wakeKey
}

// wakeKey is what a wake-up is about.
type wakeKey struct{ projectID, kind, resourceID string }

// subscription is one Subscribe call: a one-slot channel, so wake-ups that
// arrive while the reader is busy coalesce into one.
type subscription struct {
	filter EventFilter
	ch     chan struct{}
}

func newNotifier(pool *pgxpool.Pool) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	return &notifier{pool: pool, ctx: ctx, cancel: cancel, subs: map[*subscription]struct{}{}, pending: map[*sql.Tx][]wakeKey{}}
}

// Subscribe returns a channel that receives a value soon after an event of
// f's stream commits, and a function that ends the subscription. A value is
// a wake-up, not an event: the reader then calls Store.ListEvents after the
// last id it handled, and loops. Wake-ups coalesce (the channel holds one)
// and may be spurious (a rolled-back change, a reconnection); none is lost
// for a change that committed while subscribed.
//
// On PostgreSQL one connection per process LISTENs on EventsChannel
// (started by the first Subscribe), so changes committed by any replica or
// by the command line wake it; after a reconnection every subscriber is
// woken, as notifications may have been missed meanwhile. On SQLite the
// writers of this process wake it directly, once their transaction has
// committed (the API's reads have connections of their own, which do not
// wait for the writer: woken earlier, a reader would read the state before
// the change and then wait for a wake-up that already came). Changes made
// by another process (the command line) do not wake a SQLite reader; it
// finds them at its next read.
func (o *Outbox) Subscribe(f EventFilter) (<-chan struct{}, func()) {
	n := o.notifier
	sub := &subscription{filter: f, ch: make(chan struct{}, 1)}
	n.mu.Lock()
	n.subs[sub] = struct{}{}
	if n.pool != nil && !n.listening {
		n.listening = true
		go n.listen()
	}
	n.mu.Unlock()
	var once sync.Once
	return sub.ch, func() {
		once.Do(func() {
			n.mu.Lock()
			delete(n.subs, sub)
			n.mu.Unlock()
		})
	}
}

// notifyTx arranges the wake-up of ev's readers: NOTIFY inside tx on
// PostgreSQL (delivered at commit, dropped on rollback), after tx commits
// on SQLite (wakeTx).
func (o *Outbox) notifyTx(ctx context.Context, tx *gorm.DB, ev Event) error {
	if o.notifier.pool == nil {
		o.notifier.wakeTx(tx, wakeKey{ev.ProjectID, ev.ResourceKind, ev.ResourceID})
		return nil
	}
	payload := strings.Join([]string{ev.ID, ev.ProjectID, ev.ResourceKind, ev.ResourceID}, " ")
	if err := tx.WithContext(ctx).Exec("SELECT pg_notify(?, ?)", EventsChannel, payload).Error; err != nil {
		return fmt.Errorf("notify %s: %w", EventsChannel, err)
	}
	return nil
}

// wake signals the subscribers whose stream contains an event of this
// project and resource.
func (n *notifier) wake(projectID, kind, resourceID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for sub := range n.subs {
		if sub.filter.matches(projectID, kind, resourceID) {
			signal(sub.ch)
		}
	}
}

// beginTx registers tx, a transaction Store.Tx began on SQLite, so that
// the wake-ups of its changes wait for its end (endTx).
func (n *notifier) beginTx(tx *gorm.DB) *sql.Tx {
	sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
	if !ok {
		return nil
	}
	n.mu.Lock()
	n.pending[sqlTx] = nil
	n.mu.Unlock()
	return sqlTx
}

// wakeTx wakes k's readers on SQLite when tx's transaction commits (a
// rollback of a savepoint inside it makes a spurious wake-up, which readers
// allow); at once when tx is not a transaction begun by Store.Tx.
func (n *notifier) wakeTx(tx *gorm.DB, k wakeKey) {
	if sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx); ok {
		n.mu.Lock()
		keys, open := n.pending[sqlTx]
		if open {
			n.pending[sqlTx] = append(keys, k)
		}
		n.mu.Unlock()
		if open {
			return
		}
	}
	n.wake(k.projectID, k.kind, k.resourceID)
}

// endTx sends the wake-ups of sqlTx's changes when it committed, and
// forgets them.
func (n *notifier) endTx(sqlTx *sql.Tx, committed bool) {
	if sqlTx == nil {
		return
	}
	n.mu.Lock()
	keys := n.pending[sqlTx]
	delete(n.pending, sqlTx)
	n.mu.Unlock()
	if !committed {
		return
	}
	for _, k := range keys {
		n.wake(k.projectID, k.kind, k.resourceID)
	}
}

func (n *notifier) wakeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for sub := range n.subs {
		signal(sub.ch)
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// listen holds a PostgreSQL connection LISTENing on EventsChannel until the
// database closes, reconnecting with backoff.
func (n *notifier) listen() {
	delay := 100 * time.Millisecond
	for n.ctx.Err() == nil {
		started := time.Now()
		_ = n.listenOnce() // the error ends this connection; the loop makes another
		if time.Since(started) > time.Minute {
			delay = 100 * time.Millisecond
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (n *notifier) listenOnce() error {
	conn, err := n.pool.Acquire(n.ctx)
	if err != nil {
		return err
	}
	// The connection leaves the pool: its LISTEN state must not be reused.
	pc := conn.Hijack()
	defer pc.Close(context.Background())
	if _, err := pc.Exec(n.ctx, "LISTEN "+EventsChannel); err != nil {
		return err
	}
	n.wakeAll()
	for {
		msg, err := pc.WaitForNotification(n.ctx)
		if err != nil {
			return err
		}
		parts := strings.Split(msg.Payload, " ")
		if len(parts) != 4 {
			n.wakeAll()
			continue
		}
		n.wake(parts[1], parts[2], parts[3])
	}
}

// close stops the listener.
func (n *notifier) close() { n.cancel() }
