package shapes

import (
	"errors"
	"math"
)

// ErrNegative is returned when a dimension is negative.
var ErrNegative = errors.New("shapes: negative dimension")

// Units of measure.
const (
	Metres Unit = iota
	Feet
)

// Unit is a unit of length.
type Unit int

// Shape is anything with an area.
type Shape interface {
	Area() float64
	Perimeter() float64
}

// Circle is a round shape.
type Circle struct {
	Radius float64
}

// Area returns the area of the circle.
func (c *Circle) Area() float64 {
	return math.Pi * c.Radius * c.Radius
}

// NewCircle validates r and returns a circle.
func NewCircle(r float64) (*Circle, error) {
	if r < 0 {
		return nil, ErrNegative
	}
	return &Circle{Radius: r}, nil
}

// Max returns the larger of two ordered values.
func Max[T int | float64](a, b T) T {
	if a > b {
		return a
	}
	return b
}

type (
	// Point is a position in the plane.
	Point struct{ X, Y float64 }
	// Polygon is a closed chain of points.
	Polygon []Point
)

func parseHTTPHeader(line string) (string, string) {
	for i := 0; i < len(line); i++ {
		if line[i] == ':' {
			return line[:i], line[i+1:]
		}
	}
	return line, ""
}
