package listing

import (
	"fmt"
	"testing"
)

func TestA(t *testing.T) {}

// Testing, Testfoo and Testé are helpers: a lower-case letter follows the prefix.
func Testing(t *testing.T) {}

func Testfoo(t *testing.T) {}

func Testé(t *testing.T) {}

func Test(t *testing.T) {}

func Test_under(t *testing.T) {}

func TestΣ(t *testing.T) {}

func Test1(*testing.T) {}

func TestEmptyResults(t *testing.T) () {}

// TestMain that takes *testing.T is an ordinary test.
func TestMain(t *testing.T) {}

type suite struct{}

// A method is never a test.
func (suite) TestMethod(t *testing.T) {}

func BenchmarkA(b *testing.B) {}

func Benchmark(b *testing.B) {}

func FuzzA(f *testing.F) {}

func Fuzzy(x int) int { return x }

func ExampleAdd() {
	fmt.Println(Add(1, 2))
	// Output: 3
}

func ExampleNoOutput() {
	fmt.Println(Add(1, 2))
}

func ExampleEmptyOutput() {
	// Output:
}

func ExampleUnordered() {
	fmt.Println(1)
	fmt.Println(2)
	// Unordered output:
	// 2
	// 1
}

func ExampleTrailing() {
	fmt.Println("x") // Output: x
}

func ExampleNotLast() {
	fmt.Println("x")
	// Output: x

	// A later note: the last comment group is not an output comment.
}

func ExampleLower() {
	fmt.Println("x")
	// output: x
}

func ExampleBlock() {
	fmt.Println("x")
	/* Output: x */
}

func ExampleAfterCode() {
	/*
		Output: x
	*/
	fmt.Println("x")
}

func ExampleDirective() {
	fmt.Println("x")
	//output:x
}

func Example_suffix() {
	fmt.Println("x")
	// Output: x
}

func Examplefoo() {
	fmt.Println("x")
	// Output: x
}

func ExampleParams(x int) {
	fmt.Println(x)
	// Output: 0
}

func ExampleResults() int {
	return 0
	// Output:
}

func ExampleRaw() {
	fmt.Print(`x
`) // Output: x
}

func ExampleSeparated() {
	fmt.Println("x")
	// A note first.

	// Output: x
}

func ExampleGrouped() {
	fmt.Println("x")
	// A note first,
	// Output: x
}
