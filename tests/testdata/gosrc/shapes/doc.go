// Package shapes computes areas and perimeters of simple shapes.
//
// It exists as a fixture for the code-search chunker tests.
package shapes
