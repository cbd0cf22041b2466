# cmake -DROOT=web-folder -DOUT=file.cpp -P embed_web_assets.cmake
# Writes a C++ source holding every file of the web app as a byte array (see web_assets.h).
file(GLOB_RECURSE files RELATIVE ${ROOT} ${ROOT}/*)
list(SORT files)
set(arrays "")
set(entries "")
set(i 0)
foreach(name IN LISTS files)
  file(READ ${ROOT}/${name} hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
  string(APPEND arrays "const char asset_${i}[] = {${bytes}'\\0'};\n")
  get_filename_component(ext ${name} LAST_EXT)
  if(ext STREQUAL ".html")
    set(type "text/html; charset=utf-8")
  elseif(ext STREQUAL ".js")
    set(type "text/javascript; charset=utf-8")
  elseif(ext STREQUAL ".css")
    set(type "text/css; charset=utf-8")
  elseif(ext STREQUAL ".svg")
    set(type "image/svg+xml")
  elseif(ext STREQUAL ".png")
    set(type "image/png")
  else()
    set(type "application/octet-stream")
  endif()
  string(APPEND entries "    {\"/${name}\", \"${type}\", std::string_view(asset_${i}, ${size})},\n")
  math(EXPR i "${i} + 1")
endforeach()
file(WRITE ${OUT}.tmp "// Generated from web/ by server/embed_web_assets.cmake; do not edit.
#include \"web_assets.h\"

namespace mclip::server {
namespace {
${arrays}
const WebAsset assets[] = {
${entries}};
}  // namespace

const WebAsset* find_web_asset(std::string_view path) {
    for (const WebAsset& asset : assets) {
        if (asset.path == path) return &asset;
    }
    return nullptr;
}

}  // namespace mclip::server
")
file(RENAME ${OUT}.tmp ${OUT})
