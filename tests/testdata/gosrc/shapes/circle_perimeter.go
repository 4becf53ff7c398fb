package shapes

import "math"

// Perimeter returns the circumference of the circle.
func (c Circle) Perimeter() float64 { return 2 * math.Pi * c.Radius }
