// Package noisy exists to be tested loudly.
package noisy

// Line is one line of noise.
const Line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789ab"
