// Package ent holds the generated database client. The schema lives in
// ./schema; run `go generate ./ent` after changing it and commit the result.
package ent

//go:generate go run entgo.io/ent/cmd/ent generate --feature sql/upsert,sql/lock,sql/execquery,sql/modifier ./schema
