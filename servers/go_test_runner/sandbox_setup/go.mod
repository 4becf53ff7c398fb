module goresolve.local/sandboxsetup

go 1.22
