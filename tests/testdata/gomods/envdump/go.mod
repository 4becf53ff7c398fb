module example.com/envdump

go 1.22
