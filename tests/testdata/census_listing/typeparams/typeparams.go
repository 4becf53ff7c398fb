// Package typeparams has a generic test, which go refuses.
package typeparams
