-- Rotating refresh tokens: each request spends one token and each 200 gives back its successor, so every
-- thread keeps a queue as long as its connections (filled from the file REFRESH_TOKENS, one token a line).
local queue = {}
local tokens = {}
for line in io.lines(os.getenv("REFRESH_TOKENS")) do
  if line ~= "" then tokens[#tokens + 1] = line end
end

local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("id", counter)
end

init = function(args)
  local threads = tonumber(os.getenv("THREADS"))
  for i = id, #tokens, threads do queue[#queue + 1] = tokens[i] end
end

request = function()
  local token = table.remove(queue, 1)
  if token == nil then token = "exhausted" end
  return wrk.format("POST", "/api/v1/auth/refresh", { ["Content-Type"] = "application/json" },
    '{"refresh_token":"' .. token .. '"}')
end

-- The first few failures are printed, so that a failing run says why.
local failures = 0
response = function(status, headers, body)
  local next_token = body:match('"refresh_token":"([^"]+)"')
  if next_token then
    queue[#queue + 1] = next_token
  else
    failures = failures + 1
    if failures <= 3 then print("refresh failed: " .. status .. " " .. body) end
  end
end
