package ghsim

import (
	"strconv"
	"time"
)

// advanceRuns moves every unfinished run along its timeline up to now,
// emitting the webhooks of each transition with the transition's own time.
// Runs are advanced in id order so that deliveries are deterministic.
func (s *Sim) advanceRuns(now time.Time) {
	for _, rn := range s.sortedRuns() {
		if rn.status == statusCompleted {
			continue
		}
		j := rn.latestJob()
		until := now
		if !j.cancelAt.IsZero() && j.cancelAt.Before(until) {
			until = j.cancelAt
		}
		s.advanceJob(j, until)
		if j.status != statusCompleted && !j.cancelAt.IsZero() {
			s.cancelJob(j, j.cancelAt)
		}
	}
}

func (s *Sim) advanceJob(j *job, now time.Time) {
	rn := j.run
	if j.status == statusQueued {
		if j.outcome == OutcomeHangQueued || now.Before(j.startAt) {
			return
		}
		s.nextRunnerID++
		j.runnerID = s.nextRunnerID
		j.runnerName = "GitHub Actions " + strconv.FormatInt(j.runnerID, 10)
		j.status, j.startedAt = statusInProgress, j.startAt
		for i, name := range stepNames {
			j.steps = append(j.steps, &step{number: i + 1, name: name, status: statusQueued})
		}
		rn.status, rn.updatedAt = statusInProgress, j.startAt
		s.emitJob(j, "in_progress", j.startAt)
		s.emitRun(rn, "in_progress", j.startAt)
	}
	for i, st := range j.steps {
		p := j.plan[i]
		if st.status == statusCompleted {
			continue
		}
		if now.Before(p.start) {
			return
		}
		if p.conclusion == "skipped" {
			st.status, st.conclusion, st.startedAt, st.completedAt = statusCompleted, "skipped", p.start, p.end
			continue
		}
		if st.status == statusQueued {
			st.status, st.startedAt = statusInProgress, p.start
			rn.updatedAt = p.start
		}
		if i == stepBuild && j.outcome == OutcomeHangInProgress {
			return
		}
		if now.Before(p.end) {
			return
		}
		if i == stepBuild && j.outcome == OutcomeTimeoutMinutes {
			// The step ran past timeout-minutes: GitHub cancels the job.
			s.cancelJob(j, p.end)
			return
		}
		st.status, st.conclusion, st.completedAt = statusCompleted, p.conclusion, p.end
		if i == stepUpload && j.outcome == OutcomeSuccess {
			s.uploadAsset(j, p.end)
		}
	}
	end := j.plan[len(j.plan)-1].end
	conclusion := "success"
	if j.outcome == OutcomeFailure {
		conclusion = "failure"
	}
	s.completeJob(j, conclusion, end)
}

// cancelJob ends a job at `at` as cancelled: the running step is cancelled,
// the steps not yet run are skipped.
func (s *Sim) cancelJob(j *job, at time.Time) {
	j.cancelled = true
	for _, st := range j.steps {
		switch st.status {
		case statusInProgress:
			st.status, st.conclusion, st.completedAt = statusCompleted, "cancelled", at
		case statusQueued:
			st.status, st.conclusion, st.startedAt, st.completedAt = statusCompleted, "skipped", at, at
		}
	}
	s.completeJob(j, "cancelled", at)
}

func (s *Sim) completeJob(j *job, conclusion string, at time.Time) {
	rn := j.run
	if j.startedAt.IsZero() {
		j.startedAt = j.createdAt
	}
	j.status, j.conclusion, j.completedAt = statusCompleted, conclusion, at
	rn.status, rn.conclusion, rn.updatedAt = statusCompleted, conclusion, at
	s.emitJob(j, "completed", at)
	s.emitRun(rn, "completed", at)
}
