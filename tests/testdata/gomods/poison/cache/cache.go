// Package cache is what test code that tries to persist beyond its run looks like.
package cache
