package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/deskforge/deskforge/models"
	"github.com/deskforge/deskforge/server"
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
	if err := noArgs(fs, stderr); err != nil {
		return err
	}
	cfg, err := cf.load(false)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	db, err := openDatabase(ctx, cfg.DatabaseURL)
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

// openDatabase opens the database at url; an SQLite file that cannot be
// written says which setting moves it.
func openDatabase(ctx context.Context, url string) (*models.DB, error) {
	db, err := models.Open(ctx, url)
	if errors.Is(err, models.ErrNotWritable) {
		return nil, fmt.Errorf("%w\nSet DESKFORGE_DATABASE_URL (or --database-url) to a file in a writable directory, e.g. sqlite:///var/lib/deskforge/deskforge.db", err)
	}
	return db, err
}

// openStore opens and migrates the database of an admin command, so that
// the first command on a fresh database (creating the first key) works.
func openStore(ctx context.Context, cfg Config, stderr io.Writer) (*models.Store, func(), error) {
	db, err := openDatabase(ctx, cfg.DatabaseURL)
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
	// Admin commands write project events (project.created, …).
	db.Outbox().SetRenderer(server.EventRenderer(cfg.PublicURL))
	return models.NewStore(db), func() { db.Close() }, nil
}

// openStoreFromFlags loads the configuration of a database subcommand and
// opens (and migrates) its store; call the returned func when done.
func openStoreFromFlags(ctx context.Context, cf *configFlags, stderr io.Writer) (*models.Store, func(), error) {
	cfg, err := cf.load(false)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return openStore(ctx, cfg, stderr)
}

// requireOneArg prints what is missing and the usage when fs did not get
// exactly one argument, and returns errUsage then.
func requireOneArg(fs *flag.FlagSet, stderr io.Writer, what string) error {
	if fs.NArg() == 1 {
		return nil
	}
	fmt.Fprintf(stderr, "%s needs exactly one %s\n\n", fs.Name(), what)
	fs.SetOutput(stderr)
	fs.Usage()
	return errUsage
}

// noArgs prints the usage and returns errUsage when fs got positional
// arguments (a command that takes none must not ignore them: "--resizable
// false" would silently keep the default).
func noArgs(fs *flag.FlagSet, stderr io.Writer) error {
	if fs.NArg() == 0 {
		return nil
	}
	fmt.Fprintf(stderr, "%s takes no arguments, got %q\n\n", fs.Name(), fs.Args())
	fs.SetOutput(stderr)
	fs.Usage()
	return errUsage
}
