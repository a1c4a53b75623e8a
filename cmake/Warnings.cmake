# One place for the warning set and the sanitizer switch; every target calls cm_target_flags().
set(CM_WARNINGS
    -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wpointer-arith -Wcast-qual -Wsign-compare -Wformat=2 -fno-common)

function(cm_target_flags tgt)
    target_compile_options(${tgt} PRIVATE ${CM_WARNINGS})
    target_compile_definitions(${tgt} PRIVATE _GNU_SOURCE)
endfunction()

if(CM_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    add_link_options(-fsanitize=address,undefined)
endif()
