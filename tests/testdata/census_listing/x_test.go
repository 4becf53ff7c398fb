package listing_test

import (
	"fmt"
	. "testing"

	"example.com/listing"
)

// TestA is also the name of an internal test: both are listed (one test binary).
func TestA(t *T) {}

func TestExternal(t *T) {}

func FuzzExternal(f *F) {}

func ExampleAdd_external() {
	fmt.Println(listing.Add(2, 2))
	// Output: 4
}
