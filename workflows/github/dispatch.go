package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	gh "github.com/google/go-github/v62/github"

	"github.com/deskforge/deskforge/workflows"
)

// dispatchBody is the body of POST .../dispatches. go-github v62's
// CreateWorkflowDispatchEventRequest has no return_run_details.
type dispatchBody struct {
	Ref              string            `json:"ref"`
	Inputs           map[string]string `json:"inputs,omitempty"`
	ReturnRunDetails bool              `json:"return_run_details,omitempty"`
}

// dispatchAnswer is the 200 answer to a dispatch with return_run_details.
type dispatchAnswer struct {
	WorkflowRunID int64  `json:"workflow_run_id"`
	RunURL        string `json:"run_url"`
	HTMLURL       string `json:"html_url"`
}

// DispatchWorkflow triggers a workflow_dispatch run, asking for the run's
// details. When the server rejects return_run_details (GHES answers 400/422
// "… is not a permitted key"), the client remembers it (SupportsRunDetails
// turns false) and dispatches again without the key; the result then has
// RunID 0. Each POST is paced (see Options.WritesPerMinute).
func (c *Client) DispatchWorkflow(ctx context.Context, req workflows.DispatchRequest) (workflows.DispatchResult, error) {
	owner, name, err := splitRepo(req.Repo)
	if err != nil {
		return workflows.DispatchResult{}, fmt.Errorf("dispatch %s in %s: %w", req.Workflow, req.Repo, err)
	}
	op := fmt.Sprintf("dispatch %s in %s at %s", req.Workflow, req.Repo, req.Ref)
	path := fmt.Sprintf("%s/actions/workflows/%s/dispatches", repoPath(owner, name), url.PathEscape(req.Workflow))

	if c.SupportsRunDetails() {
		result, err := c.dispatch(ctx, op, path, dispatchBody{Ref: req.Ref, Inputs: req.Inputs, ReturnRunDetails: true})
		if !isRunDetailsRejection(err) {
			return result, err
		}
		if c.runDetailsRejected.CompareAndSwap(false, true) {
			c.log.Info("github server rejects return_run_details; dispatching without it from now on",
				"github_base_url", c.baseURL)
		}
	}
	return c.dispatch(ctx, op, path, dispatchBody{Ref: req.Ref, Inputs: req.Inputs})
}

// dispatch sends one paced dispatch POST. A rejection of return_run_details
// is returned untranslated (a *gh.ErrorResponse) so that the caller can
// recognise it.
func (c *Client) dispatch(ctx context.Context, op, path string, body dispatchBody) (workflows.DispatchResult, error) {
	if err := c.paceWrite(ctx); err != nil {
		return workflows.DispatchResult{}, fmt.Errorf("%s: %w", op, err)
	}
	httpReq, err := c.gh.NewRequest(http.MethodPost, path, body)
	if err != nil {
		return workflows.DispatchResult{}, fmt.Errorf("%s: %w", op, err)
	}
	var answer dispatchAnswer
	resp, err := c.gh.Do(ctx, httpReq, &answer)
	if err != nil {
		if body.ReturnRunDetails && isRunDetailsRejection(err) {
			return workflows.DispatchResult{}, err
		}
		return workflows.DispatchResult{}, translateError(ctx, op, resp, err)
	}
	return workflows.DispatchResult{RunID: answer.WorkflowRunID, RunURL: answer.RunURL, HTMLURL: answer.HTMLURL}, nil
}

// isRunDetailsRejection recognises GHES refusing the return_run_details key:
// 400 or 422 with a message naming the key or "is not a permitted key".
func isRunDetailsRejection(err error) bool {
	var answer *gh.ErrorResponse
	if !errors.As(err, &answer) || answer.Response == nil {
		return false
	}
	if s := answer.Response.StatusCode; s != http.StatusBadRequest && s != http.StatusUnprocessableEntity {
		return false
	}
	mentions := func(s string) bool {
		return strings.Contains(s, "return_run_details") || strings.Contains(s, "is not a permitted key")
	}
	if mentions(answer.Message) {
		return true
	}
	for _, d := range answer.Errors {
		if mentions(d.Message) || d.Field == "return_run_details" {
			return true
		}
	}
	return false
}

// paceWrite waits for this client's next write slot, within both the
// per-minute and the per-hour budget. When the slot is further away than
// MaxPacingWait it gives the slot back and returns a
// *workflows.RateLimitError saying when to come back, without calling
// GitHub.
func (c *Client) paceWrite(ctx context.Context) error {
	now := time.Now()
	minute := c.writes.ReserveN(now, 1)
	hour := c.hourlyWrites.ReserveN(now, 1)
	if !minute.OK() || !hour.OK() {
		minute.CancelAt(now)
		hour.CancelAt(now)
		return &workflows.RateLimitError{Until: now.Add(time.Minute).UTC(), Message: "paced locally", Local: true}
	}
	delay := max(minute.DelayFrom(now), hour.DelayFrom(now))
	if delay == 0 {
		return nil
	}
	if delay > c.maxPacingWait {
		minute.CancelAt(now)
		hour.CancelAt(now)
		return &workflows.RateLimitError{Until: now.Add(delay).UTC(), Message: "paced locally", Local: true}
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		minute.Cancel()
		hour.Cancel()
		return ctx.Err()
	}
}

// ListDispatchRuns lists the workflow_dispatch runs of a workflow file
// created at or after since, newest first, following every page.
func (c *Client) ListDispatchRuns(ctx context.Context, repo, workflow string, since time.Time) ([]workflows.Run, error) {
	op := fmt.Sprintf("list dispatch runs of %s in %s since %s", workflow, repo, since.UTC().Format(time.RFC3339))
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	opts := &gh.ListWorkflowRunsOptions{
		Event:       "workflow_dispatch",
		Created:     ">=" + since.UTC().Format(time.RFC3339),
		ListOptions: gh.ListOptions{PerPage: 100},
	}
	var runs []workflows.Run
	for {
		page, resp, err := c.gh.Actions.ListWorkflowRunsByFileName(ctx, owner, name, workflow, opts)
		if err != nil {
			return nil, translateError(ctx, op, resp, err)
		}
		for _, r := range page.WorkflowRuns {
			runs = append(runs, runFromGitHub(r, repo))
		}
		if resp.NextPage == 0 || resp.NextPage == opts.Page {
			return runs, nil
		}
		opts.Page = resp.NextPage
	}
}
