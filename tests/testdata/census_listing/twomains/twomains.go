// Package twomains has a TestMain in its internal and its external test package.
package twomains
