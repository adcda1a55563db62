package e2e

import "testing"

// TestHappyPaths runs the main payment paths on SQLite, and records the
// histories of the replay test when PAYMENTS_RECORD_HISTORIES=1.
func TestHappyPaths(t *testing.T) {
	t.Parallel()
	runHappyPaths(t, newEnv(t, recording()))
}

// TestHappyPathsMySQL runs the same paths on MySQL/MariaDB; it skips, saying
// so, without PAYMENTS_TEST_MYSQL_DSN.
func TestHappyPathsMySQL(t *testing.T) {
	t.Parallel()
	runHappyPaths(t, newEnv(t, withStore(newMySQLStore(t))))
}
