package workflows

import (
	"context"
	"errors"

	"github.com/riverqueue/river"
)

// RegisterWorkers adds the engine's River workers to workers.
func (e *Engine) RegisterWorkers(workers *river.Workers) {
	river.AddWorker(workers, &dispatchWorker{engine: e})
}

// PeriodicJobs returns the engine's periodic River jobs (run by the leader).
func (e *Engine) PeriodicJobs() []*river.PeriodicJob { return nil }

// dispatchWorker dispatches a queued build to GitHub Actions.
type dispatchWorker struct {
	river.WorkerDefaults[DispatchBuildArgs]
	engine *Engine
}

// Work is a placeholder until the engine lands.
func (w *dispatchWorker) Work(ctx context.Context, job *river.Job[DispatchBuildArgs]) error {
	return errors.New("dispatch worker not implemented yet")
}
