module example.com/poison

go 1.22
