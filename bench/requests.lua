-- wrk script: replays pre-built requests (path, headers, body with a real signature)
-- from the file named by the first script argument. Thread i takes lines i, i+T, ...
-- so no two connections send the same line; at the end it reports the status counts.
local threads = {}
local nthreads = 0

function setup(thread)
  thread:set("id", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end

local prepared = {}
local cursor = 0
statuses = {}

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("(.-)\t") do table.insert(fields, field) end
  return fields
end

function init(args)
  local stride = tonumber(args[2] or "1")
  local index = 0
  for line in io.lines(args[1]) do
    if index % stride == id then
      local f = split(line)
      local headers = {}
      for i = 2, #f - 1, 2 do headers[f[i]] = f[i + 1] end
      table.insert(prepared, wrk.format("POST", f[1], headers, f[#f]))
    end
    index = index + 1
  end
end

function request()
  cursor = cursor + 1
  if cursor > #prepared then cursor = 1 end
  return prepared[cursor]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, count in pairs(counts) do total[status] = (total[status] or 0) + count end
  end
  local parts = {}
  for status, count in pairs(total) do table.insert(parts, status .. "=" .. count) end
  io.write("STATUSES " .. table.concat(parts, " ") .. "\n")
  io.write(string.format("RESULT rps=%.1f p50=%.3f p99=%.3f n=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests))
end
