module example.com/multimod

go 1.22
