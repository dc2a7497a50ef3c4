# cysd_tokenizers(<sd_dir> <destination> <component> <name>...): stable-diffusion.cpp's tokenizer
# vocabularies <name>... (from the tree <sd_dir>) as xz files, made by tokenizer_data.py (beside
# this file) as part of ALL and installed into <destination>. Used by cysd (the vocabularies its
# wheel carries) and cysd-tokenizers (the rest). Needs the Python::Interpreter target.
function(cysd_tokenizers sd_dir destination component)
  set(_script "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/tokenizer_data.py")
  set(_vocab_dir "${sd_dir}/src/tokenizers/vocab")
  set(_out "${CMAKE_CURRENT_BINARY_DIR}/tokenizers")
  file(GLOB _headers "${_vocab_dir}/*.hpp")
  list(TRANSFORM ARGN PREPEND "${_out}/" OUTPUT_VARIABLE _files)
  list(TRANSFORM _files APPEND ".xz")
  add_custom_command(
    OUTPUT ${_files}
    COMMAND Python::Interpreter "${_script}" "${_vocab_dir}" "${_out}" ${ARGN}
    DEPENDS "${_script}" ${_headers}
    COMMENT "Compressing the tokenizer vocabularies: ${ARGN}"
    VERBATIM)
  add_custom_target(tokenizer_vocabularies ALL DEPENDS ${_files})
  install(FILES ${_files} DESTINATION "${destination}" COMPONENT ${component})
endfunction()
