module example.com/workspace/tools

go 1.22
