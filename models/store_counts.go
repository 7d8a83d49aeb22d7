package models

import (
	"context"
	"fmt"
	"strconv"

	"gorm.io/gorm"
)

// The build_counts table keeps, per project, how many builds have each
// combination of status, platform, arch and version. Triggers on builds
// maintain it in the same transaction as every insert, delete and change of
// those columns, so the `total` of a filtered build list is a sum over a few
// rows instead of a COUNT over up to every build of the project (tens of
// milliseconds at 100,000 builds, on every page).
//
// A trigger decrements the old combination before it increments the new
// one; statuses only move forward, so concurrent transactions take these row
// locks in the same order. On PostgreSQL each combination has up to
// countSlots rows, summed by every count.

const buildCountsTable = `CREATE TABLE build_counts (
	project_id VARCHAR(40) NOT NULL,
	status VARCHAR(16) NOT NULL,
	platform VARCHAR(16) NOT NULL,
	arch VARCHAR(16) NOT NULL,
	version VARCHAR(100) NOT NULL,
	n BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (project_id, status, platform, arch, version)
)`

const buildCountsBackfill = `INSERT INTO build_counts (project_id, status, platform, arch, version, n)
	SELECT project_id, status, platform, arch, version, COUNT(*) FROM builds
	GROUP BY project_id, status, platform, arch, version`

// sqliteBuildCountTriggers keep build_counts on SQLite.
var sqliteBuildCountTriggers = []string{
	`CREATE TRIGGER IF NOT EXISTS build_counts_insert AFTER INSERT ON builds BEGIN
		INSERT INTO build_counts (project_id, status, platform, arch, version, n)
		VALUES (NEW.project_id, NEW.status, NEW.platform, NEW.arch, NEW.version, 1)
		ON CONFLICT (project_id, status, platform, arch, version) DO UPDATE SET n = n + 1;
	END`,
	`CREATE TRIGGER IF NOT EXISTS build_counts_delete AFTER DELETE ON builds BEGIN
		UPDATE build_counts SET n = n - 1 WHERE project_id = OLD.project_id AND status = OLD.status
			AND platform = OLD.platform AND arch = OLD.arch AND version = OLD.version;
	END`,
	`CREATE TRIGGER IF NOT EXISTS build_counts_update AFTER UPDATE OF project_id, status, platform, arch, version ON builds
	WHEN OLD.project_id IS NOT NEW.project_id OR OLD.status IS NOT NEW.status OR OLD.platform IS NOT NEW.platform
		OR OLD.arch IS NOT NEW.arch OR OLD.version IS NOT NEW.version
	BEGIN
		UPDATE build_counts SET n = n - 1 WHERE project_id = OLD.project_id AND status = OLD.status
			AND platform = OLD.platform AND arch = OLD.arch AND version = OLD.version;
		INSERT INTO build_counts (project_id, status, platform, arch, version, n)
		VALUES (NEW.project_id, NEW.status, NEW.platform, NEW.arch, NEW.version, 1)
		ON CONFLICT (project_id, status, platform, arch, version) DO UPDATE SET n = n + 1;
	END`,
}

// countSlots is how many rows PostgreSQL keeps per combination (the slot
// column): a transaction adds to the row of its slot, its transaction id
// modulo countSlots, so concurrent triggers of one project rarely wait for
// each other's row lock (with a single row per combination they committed
// one at a time: BENCHMARKS.md, "Build creation"). The total stays exact:
// it is the sum over every slot. Every write of a transaction goes to the
// same slot, so two transactions share rows only when their slots are equal,
// and then take the row locks in the order described above.
const countSlots = 8

// postgresBuildCountsTable is buildCountsTable with the slot column.
const postgresBuildCountsTable = `CREATE TABLE build_counts (
	project_id VARCHAR(40) NOT NULL,
	status VARCHAR(16) NOT NULL,
	platform VARCHAR(16) NOT NULL,
	arch VARCHAR(16) NOT NULL,
	version VARCHAR(100) NOT NULL,
	slot SMALLINT NOT NULL DEFAULT 0,
	n BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (project_id, status, platform, arch, version, slot)
)`

// postgresAddCountSlots brings a build_counts table created before the slot
// column to postgresBuildCountsTable (its rows become slot 0).
var postgresAddCountSlots = []string{
	`ALTER TABLE build_counts ADD COLUMN slot SMALLINT NOT NULL DEFAULT 0`,
	`ALTER TABLE build_counts DROP CONSTRAINT build_counts_pkey`,
	`ALTER TABLE build_counts ADD PRIMARY KEY (project_id, status, platform, arch, version, slot)`,
}

// postgresBuildCountTriggers keep build_counts on PostgreSQL (14 or newer).
// Inserts and deletes are counted per statement, from its transition table,
// with one upsert per combination: a statement inserting or deleting many
// builds (a bulk load, a project's deletion) updates each row once instead
// of once per build, which grew quadratically (100,000 builds in one
// INSERT took 67 s, 1,000,000 did not finish in 28 minutes). Updates change
// one build at a time and are counted per row, only when a counted column
// changes.
var postgresBuildCountTriggers = []string{
	`DROP TRIGGER IF EXISTS build_counts_insert_delete ON builds`,
	`CREATE OR REPLACE FUNCTION deskforge_build_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO build_counts (project_id, status, platform, arch, version, slot, n)
		SELECT project_id, status, platform, arch, version, txid_current() % ` + slotsSQL + `, COUNT(*) FROM new_builds
		GROUP BY project_id, status, platform, arch, version ORDER BY 1, 2, 3, 4, 5
		ON CONFLICT (project_id, status, platform, arch, version, slot) DO UPDATE SET n = build_counts.n + EXCLUDED.n;
		RETURN NULL;
	END $$`,
	`CREATE OR REPLACE FUNCTION deskforge_build_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO build_counts (project_id, status, platform, arch, version, slot, n)
		SELECT project_id, status, platform, arch, version, txid_current() % ` + slotsSQL + `, -COUNT(*) FROM old_builds
		GROUP BY project_id, status, platform, arch, version ORDER BY 1, 2, 3, 4, 5
		ON CONFLICT (project_id, status, platform, arch, version, slot) DO UPDATE SET n = build_counts.n + EXCLUDED.n;
		RETURN NULL;
	END $$`,
	`CREATE OR REPLACE FUNCTION deskforge_build_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
	DECLARE
		s SMALLINT := txid_current() % ` + slotsSQL + `;
	BEGIN
		INSERT INTO build_counts (project_id, status, platform, arch, version, slot, n)
		VALUES (OLD.project_id, OLD.status, OLD.platform, OLD.arch, OLD.version, s, -1)
		ON CONFLICT (project_id, status, platform, arch, version, slot) DO UPDATE SET n = build_counts.n - 1;
		INSERT INTO build_counts (project_id, status, platform, arch, version, slot, n)
		VALUES (NEW.project_id, NEW.status, NEW.platform, NEW.arch, NEW.version, s, 1)
		ON CONFLICT (project_id, status, platform, arch, version, slot) DO UPDATE SET n = build_counts.n + 1;
		RETURN NULL;
	END $$`,
	`CREATE OR REPLACE TRIGGER build_counts_insert AFTER INSERT ON builds
		REFERENCING NEW TABLE AS new_builds FOR EACH STATEMENT EXECUTE FUNCTION deskforge_build_counts_insert()`,
	`CREATE OR REPLACE TRIGGER build_counts_delete AFTER DELETE ON builds
		REFERENCING OLD TABLE AS old_builds FOR EACH STATEMENT EXECUTE FUNCTION deskforge_build_counts_delete()`,
	`CREATE OR REPLACE TRIGGER build_counts_update AFTER UPDATE OF project_id, status, platform, arch, version ON builds
		FOR EACH ROW WHEN ((OLD.project_id, OLD.status, OLD.platform, OLD.arch, OLD.version)
			IS DISTINCT FROM (NEW.project_id, NEW.status, NEW.platform, NEW.arch, NEW.version))
		EXECUTE FUNCTION deskforge_build_counts_update()`,
	// The function of the per-row triggers before the slots.
	`DROP FUNCTION IF EXISTS deskforge_build_counts()`,
}

// slotsSQL is countSlots in SQL.
var slotsSQL = strconv.Itoa(countSlots)

// migrateBuildCounts creates build_counts and its triggers; on first
// creation it counts the existing builds, after the triggers exist and in
// the same transaction, so no build is missed or counted twice. Running it
// again changes nothing.
func migrateBuildCounts(ctx context.Context, db *DB) error {
	table, triggers := buildCountsTable, sqliteBuildCountTriggers
	if db.Dialect == DialectPostgres {
		table, triggers = postgresBuildCountsTable, postgresBuildCountTriggers
	}
	err := db.Gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		exists := tx.Migrator().HasTable("build_counts")
		if !exists {
			if err := tx.Exec(table).Error; err != nil {
				return fmt.Errorf("create table: %w", err)
			}
		}
		if exists && db.Dialect == DialectPostgres && !tx.Migrator().HasColumn("build_counts", "slot") {
			for _, q := range postgresAddCountSlots {
				if err := tx.Exec(q).Error; err != nil {
					return fmt.Errorf("add count slots: %w", err)
				}
			}
		}
		for _, q := range triggers {
			if err := tx.Exec(q).Error; err != nil {
				return fmt.Errorf("create trigger: %w", err)
			}
		}
		if !exists {
			if err := tx.Exec(buildCountsBackfill).Error; err != nil {
				return fmt.Errorf("count existing builds: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate build counts: %w", err)
	}
	return nil
}

// countWhere builds the conditions of f on build_counts (and builds);
// an empty ProjectID matches every project.
func (f BuildFilter) countWhere() (string, []any) {
	where, args := "project_id = ?", []any{f.ProjectID}
	if f.ProjectID == "" {
		where, args = "1 = 1", nil
	}
	for _, c := range []struct{ column, value string }{
		{"status", f.Status}, {"platform", f.Platform}, {"arch", f.Arch}, {"version", f.Version},
	} {
		if c.value != "" {
			where += " AND " + c.column + " = ?"
			args = append(args, c.value)
		}
	}
	return where, args
}
