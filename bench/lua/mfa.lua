-- Second-factor verification: every request spends one single-use body `{"mfa_token", "code"}` from the file
-- MFA_PAIRS (one a line, made by bench/mfa_pairs.py), dealt out between the THREADS threads. A thread that
-- runs out sends an empty body, which answers 422 and fails the row: the file must outlast the run.
local queue = {}
local bodies = {}
for line in io.lines(os.getenv("MFA_PAIRS")) do
  if line ~= "" then bodies[#bodies + 1] = line end
end

local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("id", counter)
end

init = function(args)
  local threads = tonumber(os.getenv("THREADS"))
  for i = id, #bodies, threads do queue[#queue + 1] = bodies[i] end
end

local next_body = 1
request = function()
  local body = queue[next_body] or "{}"
  next_body = next_body + 1
  return wrk.format("POST", "/api/v1/auth/mfa/verify", { ["Content-Type"] = "application/json" }, body)
end

-- The first few failures are printed, so that a failing run says why.
local failures = 0
response = function(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
    if failures <= 3 then print("mfa verify failed: " .. status .. " " .. body) end
  end
end
