// Package script runs user-defined projections written in JavaScript, in
// the KurrentDB projection language (see the package documentation below
// once complete, and docs/js-projections.md).
package script

import _ "github.com/dop251/goja" // the JavaScript engine
