package models

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// changesChannel is the PostgreSQL NOTIFY channel of build changes. Its
// payload is "<build id> <project id>".
const changesChannel = "deskforge_build_changes"

// changesPluginName registers the ChangeFeed with GORM, so that code holding
// only a transaction (AppendLogTx) can reach it.
const changesPluginName = "deskforge:changes"

// ChangeFeed tells subscribers that a build changed: a status transition, a
// step, progress, new log entries. Every such change appends to the build's
// log (AppendLogTx), which is where the feed is told. It carries no data:
// subscribers read what is new from the database (by log sequence number),
// so a lost or coalesced wake-up loses nothing.
//
// On PostgreSQL the change is a NOTIFY sent in the writing transaction,
// delivered at its commit to every replica's listener connection. On SQLite
// (one process) subscribers are woken in-process at once: the database has a
// single connection, so their reads wait until the writing transaction has
// committed and returned it.
type ChangeFeed struct {
	dialect string
	// connect opens the PostgreSQL listener connection.
	connect func(ctx context.Context) (*pgx.Conn, error)
	log     *slog.Logger

	mu     sync.Mutex
	subs   map[string]map[chan struct{}]struct{} // by "b:<build id>" or "p:<project id>"
	cancel context.CancelFunc                    // stops the listener; nil until started
	done   chan struct{}
}

func newChangeFeed(dialect string, connect func(context.Context) (*pgx.Conn, error)) *ChangeFeed {
	return &ChangeFeed{dialect: dialect, connect: connect, log: slog.New(slog.DiscardHandler),
		subs: map[string]map[chan struct{}]struct{}{}}
}

// Name implements gorm.Plugin.
func (f *ChangeFeed) Name() string { return changesPluginName }

// Initialize implements gorm.Plugin.
func (f *ChangeFeed) Initialize(*gorm.DB) error { return nil }

// SetLogger sets where the listener reports connection trouble.
func (f *ChangeFeed) SetLogger(log *slog.Logger) {
	f.mu.Lock()
	f.log = log
	f.mu.Unlock()
}

// SubscribeBuild returns a channel that receives a value (coalesced: its
// buffer holds one) after each change of build id, and the function that
// ends the subscription. Sends never block the writer.
func (f *ChangeFeed) SubscribeBuild(id string) (<-chan struct{}, func()) {
	return f.subscribe("b:" + id)
}

// SubscribeProject is SubscribeBuild for every build of project id.
func (f *ChangeFeed) SubscribeProject(id string) (<-chan struct{}, func()) {
	return f.subscribe("p:" + id)
}

func (f *ChangeFeed) subscribe(key string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	if f.subs[key] == nil {
		f.subs[key] = map[chan struct{}]struct{}{}
	}
	f.subs[key][ch] = struct{}{}
	if f.dialect == DialectPostgres && f.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f.cancel, f.done = cancel, make(chan struct{})
		go f.listen(ctx, f.done)
	}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs[key], ch)
		if len(f.subs[key]) == 0 {
			delete(f.subs, key)
		}
		f.mu.Unlock()
	}
}

// publish wakes the subscribers of a build and of its project.
func (f *ChangeFeed) publish(buildID, projectID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, key := range []string{"b:" + buildID, "p:" + projectID} {
		for ch := range f.subs[key] {
			select {
			case ch <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
	}
}

// notifyTx announces a change of a build inside tx (see ChangeFeed).
func notifyTx(ctx context.Context, tx *gorm.DB, buildID, projectID string) error {
	p, ok := tx.Config.Plugins[changesPluginName]
	if !ok {
		return nil
	}
	f := p.(*ChangeFeed)
	if f.dialect == DialectPostgres {
		return tx.WithContext(ctx).Exec("SELECT pg_notify(?, ?)", changesChannel, buildID+" "+projectID).Error
	}
	f.publish(buildID, projectID)
	return nil
}

// listen holds a PostgreSQL connection LISTENing to changesChannel and
// publishes what arrives, reconnecting after a failure. Once listening, it
// wakes every subscriber: changes committed before (while it connected or
// was down) sent no notification it could receive.
func (f *ChangeFeed) listen(ctx context.Context, done chan struct{}) {
	defer close(done)
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := f.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		f.mu.Lock()
		log := f.log
		f.mu.Unlock()
		log.Warn("build change listener lost its connection; reconnecting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)):
		}
	}
}

func (f *ChangeFeed) listenOnce(ctx context.Context) error {
	conn, err := f.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+changesChannel); err != nil {
		return err
	}
	f.wakeAll()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		buildID, projectID, _ := strings.Cut(n.Payload, " ")
		f.publish(buildID, projectID)
	}
}

func (f *ChangeFeed) wakeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, set := range f.subs {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// close stops the listener.
func (f *ChangeFeed) close() {
	f.mu.Lock()
	cancel, done := f.cancel, f.done
	f.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
