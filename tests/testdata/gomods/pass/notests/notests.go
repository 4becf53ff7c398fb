// Package notests has no test files.
package notests

// Answer is the answer.
const Answer = 42
