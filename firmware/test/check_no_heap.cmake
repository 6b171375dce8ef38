# Fails if the given object files reference the heap or the C++ runtime.
# cmake -DOBJECTS="a.o;b.o" [-DNM=arm-none-eabi-nm] -P check_no_heap.cmake
if(NOT NM)
  find_program(NM nm REQUIRED)
endif()
foreach(object IN LISTS OBJECTS)
  execute_process(COMMAND ${NM} -u ${object} OUTPUT_VARIABLE undefined RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "nm failed on ${object}")
  endif()
  string(REGEX MATCHALL "[^\n]*(malloc|calloc|realloc|free|_Znw|_Zna|_Zdl|_Zda|__cxa_|__gxx_)[^\n]*"
         forbidden "${undefined}")
  if(forbidden)
    message(FATAL_ERROR "${object} uses the heap or the C++ runtime:\n${forbidden}")
  endif()
  message(STATUS "${object}: undefined symbols:\n${undefined}")
endforeach()
