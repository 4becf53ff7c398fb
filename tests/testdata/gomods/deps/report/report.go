// Package report does not import calc; only its tests reach it, through api.
package report

import "fmt"

// Line formats a total.
func Line(total int) string { return fmt.Sprintf("total: %d", total) }
