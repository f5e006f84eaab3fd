-- Rotating refresh tokens: each request spends one token and each 200 gives back its successor, so every
-- thread keeps a queue as long as its connections (filled from the file SPEND, one token a line; see deal.lua).
-- At `/auth/refresh` (JSON), with GRANT=oauth at the OAuth 2.0 token endpoint (a refresh_token grant, form), or
-- with GRANT=cookie at `/auth/refresh` as a browser session does (the token in the session cookie, `{}` as the
-- body, the CSRF header; the successor comes back in `Set-Cookie`).
local deal = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "deal.lua")
local queue = {}

setup = deal.setup

init = function(args)
  queue = deal.mine()
end

request = function()
  local token = table.remove(queue, 1)
  if token == nil then token = "exhausted" end
  local grant = os.getenv("GRANT")
  if grant == "cookie" then
    return wrk.format("POST", "/api/v1/auth/refresh", {
      ["Content-Type"] = "application/json",
      ["X-Requested-With"] = "securecrud",
      ["Cookie"] = "__Host-securecrud_refresh=" .. token,
    }, "{}")
  end
  if grant == "oauth" then
    return wrk.format("POST", "/api/v1/auth/token", { ["Content-Type"] = "application/x-www-form-urlencoded" },
      "grant_type=refresh_token&refresh_token=" .. token)
  end
  return wrk.format("POST", "/api/v1/auth/refresh", { ["Content-Type"] = "application/json" },
    '{"refresh_token":"' .. token .. '"}')
end

-- The first few failures are printed, so that a failing run says why.
local failures = 0
response = function(status, headers, body)
  local next_token = body:match('"refresh_token":"([^"]+)"')
  if next_token == nil and status == 200 then
    for name, value in pairs(headers) do
      if name:lower() == "set-cookie" then next_token = value:match("__Host%-securecrud_refresh=([^;]+)") end
    end
  end
  if next_token then
    queue[#queue + 1] = next_token
  else
    failures = failures + 1
    if failures <= 3 then print("refresh failed: " .. status .. " " .. body) end
  end
end
