// Package examples holds the annotated example configuration and sample
// customer mail, embedded so that `gateway demo` runs on them with nothing
// else installed.
package examples

import "embed"

// FS holds gateway.yaml and messages/*.eml.
//
//go:embed gateway.yaml messages/*.eml
var FS embed.FS
