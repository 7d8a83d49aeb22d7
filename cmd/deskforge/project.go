package main

import (
	"context"
	"errors"
	"io"
)

func runProject(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("project: not implemented yet")
}
