-- Adds the bearer token (TOKEN) to every request; optional BODY and METHOD for writes.
local token = os.getenv("TOKEN")
local body = os.getenv("BODY")
local method = os.getenv("METHOD")
wrk.headers["Authorization"] = "Bearer " .. token
if body then
  wrk.body = body
  wrk.method = method or "POST"
  wrk.headers["Content-Type"] = "application/json"
end

-- Count non-2xx answers so the bench can fail on them.
local failures = 0
response = function(status, headers, body)
  if status >= 300 then failures = failures + 1 end
end
