// Package hooks delivers events to outbound webhook endpoints: the River
// worker that sends one delivery, its retry schedule, the Standard Webhooks
// signature and the HTTP client that refuses private addresses. Deliveries
// and their jobs are created by the events outbox (models.RecordEventTx) in
// the transaction of the change they report.
package hooks

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/deskforge/deskforge/models"
)

// DefaultTimeout bounds one delivery attempt.
const DefaultTimeout = 10 * time.Second

// DefaultSchedule is the wait before each retry of a failed delivery (the
// first attempt is immediate), each with ±10 % jitter: 13 attempts over
// about 3 days 5 hours.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
	10 * time.Hour, 10 * time.Hour, 10 * time.Hour, 10 * time.Hour, 10 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// Options configure a Deliverer.
type Options struct {
	// AllowPrivate lets deliveries reach loopback and private addresses
	// (DESKFORGE_WEBHOOKS_ALLOW_PRIVATE): tests, the demo, on-premises
	// receivers.
	AllowPrivate bool
	// Timeout bounds one attempt (default DefaultTimeout).
	Timeout time.Duration
	// Schedule overrides DefaultSchedule (tests).
	Schedule []time.Duration
	// FailureWindow overrides models.WebhookFailureWindow (tests).
	FailureWindow time.Duration
	// Now tells the time (default time.Now).
	Now func() time.Time
	// Log receives one line per failed attempt (default: discard).
	Log *slog.Logger
	// Observer counts attempts by result (nil: nobody).
	Observer DeliveryObserver
}

// DeliveryObserver is told of the result of every delivery attempt:
// "delivered", "retrying" or "failed" (for good).
type DeliveryObserver interface {
	DeliveryAttempted(result string)
}

// Deliverer sends deliveries. It is safe for concurrent use.
type Deliverer struct {
	store  *models.Store
	client *http.Client
	opts   Options
}

// New returns a Deliverer on store.
func New(store *models.Store, opts Options) *Deliverer {
	opts.Timeout = cmp.Or(opts.Timeout, DefaultTimeout)
	if opts.Schedule == nil {
		opts.Schedule = DefaultSchedule
	}
	opts.FailureWindow = cmp.Or(opts.FailureWindow, models.WebhookFailureWindow)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{store: store, client: NewHTTPClient(opts.Timeout, opts.AllowPrivate), opts: opts}
}

// RegisterWorkers adds the delivery worker to workers.
func (d *Deliverer) RegisterWorkers(workers *river.Workers) {
	river.AddWorker(workers, &deliverWorker{d: d})
}

type deliverWorker struct {
	river.WorkerDefaults[models.DeliverWebhookArgs]
	d *Deliverer
}

// Work implements river.Worker.
func (w *deliverWorker) Work(ctx context.Context, job *river.Job[models.DeliverWebhookArgs]) error {
	return w.d.Deliver(ctx, job.Args.DeliveryID, job.Attempt)
}

// NextRetry follows the schedule (River's own backoff would retry for weeks).
func (w *deliverWorker) NextRetry(job *river.Job[models.DeliverWebhookArgs]) time.Time {
	return time.Now().Add(w.d.retryDelay(job.Args.DeliveryID, job.Attempt))
}

// Timeout leaves the attempt's own timeout room to record its outcome.
func (w *deliverWorker) Timeout(*river.Job[models.DeliverWebhookArgs]) time.Duration {
	return w.d.opts.Timeout + 30*time.Second
}

// retryDelay is the wait after failed attempt n (1-based): the schedule's
// n-th delay with a jitter of ±10 % derived from the delivery id and n, so
// that the time stored for the next attempt is the one River uses, and
// deliveries failing together spread out.
func (d *Deliverer) retryDelay(deliveryID string, attempt int) time.Duration {
	i := min(max(attempt, 1), len(d.opts.Schedule)) - 1
	if i < 0 {
		return 0
	}
	base := d.opts.Schedule[i]
	h := fnv.New32a()
	h.Write([]byte(deliveryID + "/" + strconv.Itoa(attempt)))
	jitter := float64(h.Sum32()%2001)/10000 - 0.1 // -0.1 … +0.1
	return base + time.Duration(float64(base)*jitter)
}

// Deliver makes attempt number attempt (1-based) of a delivery: it sends the
// event's payload signed with the endpoint's secrets and records the
// outcome. It returns an error when the delivery should be retried, nil when
// it is done: delivered, refused for good (410 Gone disables the endpoint),
// out of attempts, or moot (endpoint deleted or disabled).
func (d *Deliverer) Deliver(ctx context.Context, deliveryID string, attempt int) error {
	dl, hook, ev, err := d.store.LoadDelivery(ctx, deliveryID)
	if errors.Is(err, models.ErrNotFound) {
		return nil // the endpoint (and its deliveries) was deleted
	}
	if err != nil {
		return err
	}
	if dl.Status == models.DeliveryDelivered {
		return nil // a job run again after its outcome was recorded
	}
	now := d.opts.Now()
	if !hook.Enabled {
		_, err := d.store.RecordDeliveryAttempt(ctx, models.DeliveryAttempt{DeliveryID: dl.ID, WebhookID: hook.ID, At: now,
			Error: "not sent: the endpoint is disabled"}, d.opts.FailureWindow)
		return err
	}
	res := d.send(ctx, hook, ev, now)
	a := models.DeliveryAttempt{DeliveryID: dl.ID, WebhookID: hook.ID, At: now, StatusCode: res.status,
		Error: res.err, Response: res.body, Delivered: res.delivered(), Gone: res.status == http.StatusGone}
	retry := !a.Delivered && !a.Gone && attempt <= len(d.opts.Schedule)
	if retry {
		next := now.Add(d.retryDelay(dl.ID, attempt))
		a.NextAttemptAt = &next
	}
	disabled, err := d.store.RecordDeliveryAttempt(ctx, a, d.opts.FailureWindow)
	if err != nil {
		return err
	}
	d.observe(a.Delivered, retry && !disabled)
	if a.Delivered {
		return nil
	}
	d.opts.Log.WarnContext(ctx, "webhook delivery failed", "delivery_id", dl.ID, "webhook_id", hook.ID,
		"event_id", ev.ID, "attempt", attempt, "status", res.status, "error", res.err, "retry", retry && !disabled)
	if !retry || disabled {
		return nil
	}
	return fmt.Errorf("deliver %s to %s: %s", dl.ID, hook.ID, res.err)
}

// observe tells Options.Observer of an attempt's result.
func (d *Deliverer) observe(delivered, retry bool) {
	if d.opts.Observer == nil {
		return
	}
	switch {
	case delivered:
		d.opts.Observer.DeliveryAttempted("delivered")
	case retry:
		d.opts.Observer.DeliveryAttempted("retrying")
	default:
		d.opts.Observer.DeliveryAttempted("failed")
	}
}

// result is what one attempt got back.
type result struct {
	status int    // 0 without a response
	body   string // at most models.MaxStoredResponse bytes
	err    string // why it failed; "" when delivered
}

func (r result) delivered() bool { return r.err == "" }

// send POSTs ev's payload to hook.
func (d *Deliverer) send(ctx context.Context, hook models.Webhook, ev models.Event, now time.Time) result {
	body := ev.Payload()
	signature, err := Sign(hook.Secrets(now), ev.ID, now, body)
	if err != nil {
		return result{err: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return result{err: fmt.Sprintf("bad request: %v", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "DeskForge-Webhooks/1")
	req.Header.Set(standardwebhooks.HeaderWebhookID, ev.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, signature)
	resp, err := d.client.Do(req)
	if err != nil {
		var blocked *BlockedAddressError
		if errors.As(err, &blocked) {
			return result{err: blocked.Error()}
		}
		return result{err: err.Error()}
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, models.MaxStoredResponse))
	r := result{status: resp.StatusCode, body: string(data)}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		// Delivered, even if the body could not be read to the end.
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.err = fmt.Sprintf("HTTP %d: redirects are not followed (to %s)", resp.StatusCode, resp.Header.Get("Location"))
	default:
		r.err = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	if readErr != nil && r.err != "" {
		r.err += fmt.Sprintf(" (reading the response: %v)", readErr)
	}
	return r
}

// Sign returns the webhook-signature header of a message signed with each
// of secrets (whsec_…): "v1,<base64 HMAC-SHA256 of id.timestamp.body>",
// space-separated, computed by the Standard Webhooks library.
func Sign(secrets []string, msgID string, timestamp time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, secret := range secrets {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			return "", fmt.Errorf("signing secret: %w", err)
		}
		sig, err := wh.Sign(msgID, timestamp, body)
		if err != nil {
			return "", fmt.Errorf("sign %s: %w", msgID, err)
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}
