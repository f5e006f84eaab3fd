-- Logins at the server's production bcrypt cost, spread over the users listed one a line in the file LOGINS
-- (all with the password PASSWORD), so that no account meets its own in-flight limit. Answers are counted by
-- kind: 200, 503 (shed by the password queue, PASSWORD_QUEUE_TIMEOUT_MS: the designed answer to a flood),
-- and anything else (a failure). The counts are printed as "login statuses: ok=… shed=… other=…".
local logins = {}
for line in io.lines(os.getenv("LOGINS")) do
  if line ~= "" then logins[#logins + 1] = line end
end
local password = os.getenv("PASSWORD")
local threads = {}
local counter = 0

setup = function(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

local next_login = 0
ok, shed, other = 0, 0, 0

request = function()
  next_login = next_login + 1
  local login = logins[(next_login * 7 + id) % #logins + 1]
  return wrk.format("POST", "/api/v1/auth/login", { ["Content-Type"] = "application/json" },
    '{"login":"' .. login .. '","password":"' .. password .. '"}')
end

response = function(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 503 then shed = shed + 1
  else
    other = other + 1
    if other <= 3 then print("login failed: " .. status .. " " .. body) end
  end
end

done = function(summary, latency, requests)
  local o, s, x = 0, 0, 0
  for _, thread in ipairs(threads) do
    o = o + thread:get("ok"); s = s + thread:get("shed"); x = x + thread:get("other")
  end
  print(string.format("login statuses: ok=%d shed=%d other=%d", o, s, x))
end
