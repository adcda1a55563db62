// Package schema is the database schema of the platform, the source from which
// the ent client is generated.
package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// idMaxLen bounds every prefixed id ("acct_" + 26 ULID characters, with room
// for longer prefixes), so ids stay cheap varchar keys on MySQL.
const idMaxLen = 40

// sha256Hex matches the lower-case hex SHA-256 digests we store instead of
// secrets; a wrong length or case would silently never match on lookup.
const sha256Hex = `^[0-9a-f]{64}$`

// mysqlTime keeps microseconds on MySQL/MariaDB, whose plain DATETIME drops
// the fraction and would break "now" comparisons made within one second.
var mysqlTime = map[string]string{dialect.MySQL: "datetime(6)"}

// tableOptions pins the charset and a binary collation on MySQL, so tables do
// not inherit a latin1 or case-insensitive server default: comparisons then
// behave as on SQLite (byte-wise), and emails or idempotency keys that differ
// only in case or accents never collide.
func tableOptions() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Charset: "utf8mb4", Collation: "utf8mb4_bin"}}
}

// idField is the primary key: a prefixed ULID chosen by the store.
func idField() ent.Field {
	return field.String("id").MaxLen(idMaxLen).NotEmpty().Immutable()
}
