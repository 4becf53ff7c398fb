module example.com/unknownimport

go 1.22
