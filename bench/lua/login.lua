-- Logins of the benchmark user (LOGIN, PASSWORD) at the server's production bcrypt cost.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"login":"' .. os.getenv("LOGIN") .. '","password":"' .. os.getenv("PASSWORD") .. '"}'
