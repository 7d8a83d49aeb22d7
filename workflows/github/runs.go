package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	gh "github.com/google/go-github/v62/github"

	"github.com/deskforge/deskforge/workflows"
)

// maxJobPages bounds ListJobs' pagination (100 jobs a page).
const maxJobPages = 50

// GetRun reads one workflow run. Polling the same run again sends the last
// ETag; a 304 answer (free of rate limit) returns the cached run.
func (c *Client) GetRun(ctx context.Context, repo string, runID int64) (workflows.Run, error) {
	op := fmt.Sprintf("get run %d of %s", runID, repo)
	owner, name, err := splitRepo(repo)
	if err != nil {
		return workflows.Run{}, fmt.Errorf("%s: %w", op, err)
	}
	answer, err := c.getConditional(ctx, op, fmt.Sprintf("%s/actions/runs/%d", repoPath(owner, name), runID))
	if err != nil {
		return workflows.Run{}, err
	}
	var run gh.WorkflowRun
	if err := json.Unmarshal(answer.body, &run); err != nil {
		return workflows.Run{}, fmt.Errorf("%s: %w", op, &workflows.TransientError{Status: http.StatusOK, Err: fmt.Errorf("decode run: %w", err)})
	}
	return runFromGitHub(&run, repo), nil
}

// ListJobs lists the jobs of a run's latest attempt, following every page.
// Each page is a conditional request when polled again.
func (c *Client) ListJobs(ctx context.Context, repo string, runID int64) ([]workflows.Job, error) {
	op := fmt.Sprintf("list jobs of run %d of %s", runID, repo)
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	base := fmt.Sprintf("%s/actions/runs/%d/jobs?filter=latest&per_page=100", repoPath(owner, name), runID)
	var jobs []workflows.Job
	page := 1
	for range maxJobPages {
		u := base
		if page > 1 {
			u = fmt.Sprintf("%s&page=%d", base, page)
		}
		answer, err := c.getConditional(ctx, op, u)
		if err != nil {
			return nil, err
		}
		var list gh.Jobs
		if err := json.Unmarshal(answer.body, &list); err != nil {
			return nil, fmt.Errorf("%s: %w", op, &workflows.TransientError{Status: http.StatusOK, Err: fmt.Errorf("decode jobs: %w", err)})
		}
		for _, j := range list.Jobs {
			if j == nil {
				continue
			}
			jobs = append(jobs, jobFromGitHub(j))
		}
		if answer.nextPage <= page {
			break
		}
		page = answer.nextPage
	}
	return jobs, nil
}

// getConditional GETs path (relative to the base URL), sending the ETag of
// the last answer for that path if any. A 304 returns the cached answer.
func (c *Client) getConditional(ctx context.Context, op, path string) (*cachedAnswer, error) {
	req, err := c.gh.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	cached, haveCached := c.etags.get(path)
	if haveCached {
		req.Header.Set("If-None-Match", cached.etag)
	}
	var body bytes.Buffer
	resp, err := c.gh.Do(ctx, req, &body)
	if err != nil {
		if haveCached && resp != nil && resp.Response != nil && resp.StatusCode == http.StatusNotModified {
			return cached, nil
		}
		if resp != nil && resp.Response != nil && resp.StatusCode == http.StatusNotFound {
			c.etags.remove(path)
		}
		return nil, translateError(ctx, op, resp, err)
	}
	answer := &cachedAnswer{etag: resp.Header.Get("ETag"), body: body.Bytes(), nextPage: resp.NextPage}
	if answer.etag != "" {
		c.etags.put(path, answer)
	} else {
		c.etags.remove(path)
	}
	return answer, nil
}

// JobLogs opens the raw log of a job: GitHub answers 302 with a signed URL,
// which is then fetched without credentials (the token never reaches the
// signed URL's host). The caller closes the returned body. ErrNotFound while
// the job still runs or once the log expired.
func (c *Client) JobLogs(ctx context.Context, repo string, jobID int64) (io.ReadCloser, error) {
	op := fmt.Sprintf("get log of job %d of %s", jobID, repo)
	owner, name, err := splitRepo(repo)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	signed, resp, err := c.gh.Actions.GetWorkflowJobLogs(ctx, owner, name, jobID, 1)
	if err != nil {
		return nil, translateError(ctx, op, resp, err)
	}
	return c.fetchSigned(ctx, op, signed.String())
}

// fetchSigned GETs a signed URL without credentials and returns its body.
func (c *Client) fetchSigned(ctx context.Context, op, signedURL string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, signedURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: signed url: %w", op, err)
	}
	resp, err := c.plain.Do(req)
	if err != nil {
		return nil, translateError(ctx, op+": fetch signed url", nil, err)
	}
	if err := gh.CheckResponse(resp); err != nil {
		resp.Body.Close()
		var accepted *gh.AcceptedError
		if errors.As(err, &accepted) {
			err = &gh.ErrorResponse{Response: resp, Message: "signed url answered 202 without content"}
		}
		return nil, translateError(ctx, op+": fetch signed url", nil, err)
	}
	return resp.Body, nil
}

// CancelRun asks GitHub to cancel a run (a paced write). GitHub's 202 is
// success; 409 (the run already completed) is *workflows.InvalidError with
// Status 409.
func (c *Client) CancelRun(ctx context.Context, repo string, runID int64) error {
	op := fmt.Sprintf("cancel run %d of %s", runID, repo)
	owner, name, err := splitRepo(repo)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := c.paceWrite(ctx); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	resp, err := c.gh.Actions.CancelWorkflowRunByID(ctx, owner, name, runID)
	var accepted *gh.AcceptedError
	if err == nil || errors.As(err, &accepted) {
		return nil
	}
	return translateError(ctx, op, resp, err)
}

// runFromGitHub converts a go-github run; repo is used when the run does not
// name its repository.
func runFromGitHub(r *gh.WorkflowRun, repo string) workflows.Run {
	if full := r.GetRepository().GetFullName(); full != "" {
		repo = full
	}
	return workflows.Run{
		ID:           r.GetID(),
		Repo:         repo,
		DisplayTitle: r.GetDisplayTitle(),
		Event:        r.GetEvent(),
		Status:       r.GetStatus(),
		Conclusion:   r.GetConclusion(),
		RunAttempt:   r.GetRunAttempt(),
		HTMLURL:      r.GetHTMLURL(),
		CreatedAt:    r.GetCreatedAt().Time.UTC(),
		UpdatedAt:    r.GetUpdatedAt().Time.UTC(),
	}
}

// jobFromGitHub converts a go-github job.
func jobFromGitHub(j *gh.WorkflowJob) workflows.Job {
	job := workflows.Job{
		ID:          j.GetID(),
		RunID:       j.GetRunID(),
		Name:        j.GetName(),
		Status:      j.GetStatus(),
		Conclusion:  j.GetConclusion(),
		RunnerName:  j.GetRunnerName(),
		StartedAt:   j.GetStartedAt().Time.UTC(),
		CompletedAt: j.GetCompletedAt().Time.UTC(),
	}
	if len(j.Labels) > 0 {
		job.Labels = append([]string(nil), j.Labels...)
	}
	for _, s := range j.Steps {
		if s == nil {
			continue
		}
		job.Steps = append(job.Steps, workflows.Step{
			Number:      int(s.GetNumber()),
			Name:        s.GetName(),
			Status:      s.GetStatus(),
			Conclusion:  s.GetConclusion(),
			StartedAt:   s.GetStartedAt().Time.UTC(),
			CompletedAt: s.GetCompletedAt().Time.UTC(),
		})
	}
	return job
}
