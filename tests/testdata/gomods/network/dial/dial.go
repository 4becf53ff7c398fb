// Package dial tries to reach the outside world.
package dial
