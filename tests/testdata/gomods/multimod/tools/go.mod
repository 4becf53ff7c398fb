module example.com/multimod/tools

go 1.22
