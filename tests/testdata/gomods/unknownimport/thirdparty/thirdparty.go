// Package thirdparty imports a module that is not required by go.mod.
package thirdparty

import "github.com/nonexistent/zzz"

// Use calls into the invented module.
func Use() string { return zzz.Name() }
