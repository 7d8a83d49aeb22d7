package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/deskforge/deskforge/models"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	cf := registerConfig(fs, os.Getenv, groupDatabase, groupLog)
	fs.Usage = usageFunc(fs, "deskforge migrate [flags]",
		"Brings the database schema up to date: River's job tables, then DeskForge's tables and indexes.\n"+
			"'deskforge serve' does the same at start; running it again changes nothing.")
	if done, err := parseFlags(fs, args, stdout, stderr); done {
		return err
	}
	cfg, err := cf.load(false)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	db, err := models.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx, newLogger(cfg, stderr)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "The %s database is up to date.\n", db.Dialect)
	return nil
}

// openStore opens and migrates the database of an admin command, so that
// the first command on a fresh database (creating the first key) works.
func openStore(ctx context.Context, cfg Config, stderr io.Writer) (*models.Store, func(), error) {
	db, err := models.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	quiet := cfg
	if quiet.LogLevel < slog.LevelWarn {
		quiet.LogLevel = slog.LevelWarn
	}
	if err := db.Migrate(ctx, newLogger(quiet, stderr)); err != nil {
		db.Close()
		return nil, nil, err
	}
	return models.NewStore(db), func() { db.Close() }, nil
}
