size = 2
szie = 3
