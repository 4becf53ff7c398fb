// Package spy is what hostile test code looks like.
package spy
