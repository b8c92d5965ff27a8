-- images {} needs the folder
return extend(require "common", {
    data = images { labels = nil },
})
