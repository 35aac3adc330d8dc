module example.com/binfmtprog

go 1.21
